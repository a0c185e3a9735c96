// Sample stage: every sampler with every objective, on a problem with a known
// exact denoiser (tests/gaussian_oracle.hpp).
//
// Data: x0_g ~ N(mu_g, s_g^2), genes independent. With the exact denoiser a
// correct sampler must return N(mu, s^2) up to its discretisation error, so
// the per-gene mean and sd of the samples are checked against mu, s; for DDPM
// and DDIM on the DDPM objective also against the closed-form moments of the
// discretised sampler, derived on the discrete schedule.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "gaussian_oracle.hpp"
#include "objective/ddpm.hpp"
#include "objective/flow_matching.hpp"
#include "objective/noise_schedule.hpp"
#include "sample/samplers.hpp"

using namespace exprflow;

namespace {

constexpr int64_t kGenes = 8;

struct GaussianData {
  Tensor mu, s;  // (G,)
};

GaussianData gaussian_data() {
  // mu spread over [-1, 1], s over [0.3, 1.5].
  Tensor mu = at::linspace(-1.0, 1.0, kGenes);
  Tensor s = at::linspace(0.3, 1.5, kGenes).flip(0);  // decorrelate from mu
  return {mu, s};
}

// Exact moments of the sampler's output for one gene. With the exact eps
// predictor every update is affine in x plus independent Gaussian noise, so
// the mean and variance can be propagated through the (respaced) steps in
// closed form: this is what a correct implementation must produce, including
// its discretisation error (which, e.g., shrinks the sd of a gene with
// s = 0.3 by 8.5% for DDIM with 50 of 1000 linear steps).
struct Moments {
  double mean, sd;
};

Moments predicted(const NoiseSchedule& schedule, const SamplerSettings& st, double mu, double s) {
  // Derived on the discrete schedule, independently of the samplers' generic path code.
  const std::vector<int64_t> kept = timestep_subsequence(schedule.timesteps(), st.steps);
  double m = 0.0, v = 1.0;  // x_T ~ N(0, 1)
  for (int64_t i = static_cast<int64_t>(kept.size()) - 1; i >= 0; --i) {
    const double a = schedule.alpha_bar(kept[i]);
    const double ap = i > 0 ? schedule.alpha_bar(kept[i - 1]) : 1.0;
    // eps = k (x - sqrt(a) mu), x0 = p x + q
    const double k = std::sqrt(1 - a) / (a * s * s + 1 - a);
    const double p = (1 - std::sqrt(1 - a) * k) / std::sqrt(a), q = std::sqrt(1 - a) * k * mu;
    double c1, c0, noise_var;
    if (st.method == "ddim") {
      const double ep = (1 - std::sqrt(a) * p) / std::sqrt(1 - a), eq = -std::sqrt(a) * q / std::sqrt(1 - a);
      const double sigma = st.eta * std::sqrt((1 - ap) / (1 - a)) * std::sqrt(1 - a / ap);
      const double r = std::sqrt(std::max(1 - ap - sigma * sigma, 0.0));
      c1 = std::sqrt(ap) * p + r * ep;
      c0 = std::sqrt(ap) * q + r * eq;
      noise_var = i > 0 ? sigma * sigma : 0.0;
    } else {
      const double beta = 1 - a / ap;
      const double cx0 = beta * std::sqrt(ap) / (1 - a), cxt = (1 - ap) * std::sqrt(1 - beta) / (1 - a);
      c1 = cx0 * p + cxt;
      c0 = cx0 * q;
      noise_var = i > 0 ? beta * (1 - ap) / (1 - a) : 0.0;
    }
    m = c1 * m + c0;
    v = c1 * c1 * v + noise_var;
  }
  return {m, std::sqrt(v)};
}

// Per-gene mean and sd of samples x (B, G) against targets. Monte Carlo
// allowance: 4 standard errors (mean: sd / sqrt(B); sd: sd / sqrt(2B), i.e.
// 0.5% at B = 20000), plus `mean_slack` (absolute) and `sd_slack` (relative).
void expect_moments(const Tensor& x, const std::vector<Moments>& want, double mean_slack, double sd_slack,
                    const std::string& what) {
  const int64_t B = x.size(0);
  ASSERT_EQ(x.size(1), kGenes);
  ASSERT_TRUE(at::isfinite(x).all().item<bool>()) << what << ": non-finite samples";
  Tensor mean = x.to(at::kDouble).mean(0), sd = x.to(at::kDouble).std(0);
  for (int64_t g = 0; g < kGenes; ++g) {
    const double m = mean[g].item<double>(), sdev = sd[g].item<double>();
    EXPECT_NEAR(m, want[g].mean, 4 * want[g].sd / std::sqrt(double(B)) + mean_slack)
        << what << ": mean of gene " << g;
    EXPECT_NEAR(sdev / want[g].sd, 1.0, 4 / std::sqrt(2.0 * B) + sd_slack)
        << what << ": sd of gene " << g << " is " << sdev << ", want " << want[g].sd;
  }
}

std::vector<Moments> truth(const GaussianData& d) {
  std::vector<Moments> w;
  for (int64_t g = 0; g < kGenes; ++g) w.push_back({d.mu[g].item<double>(), d.s[g].item<double>()});
  return w;
}

std::vector<Moments> exact(const NoiseSchedule& schedule, const SamplerSettings& st, const GaussianData& d) {
  std::vector<Moments> w;
  for (int64_t g = 0; g < kGenes; ++g) {
    w.push_back(predicted(schedule, st, d.mu[g].item<double>(), d.s[g].item<double>()));
  }
  return w;
}

Tensor run(const Denoiser& net, const Objective& objective, const SamplerSettings& settings, uint64_t seed,
           int64_t B = 20000) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  return sample(net, objective, {}, B, kGenes, at::kCPU, settings, gen);
}

SamplerSettings settings(const char* method, int64_t steps, double eta = 0.0) {
  SamplerSettings s;
  s.method = method;
  s.steps = steps;
  s.eta = eta;
  return s;
}

std::string describe(const std::string& kind, const SamplerSettings& st) {
  return kind + " " + st.method + " steps " + std::to_string(st.steps) + " eta " + std::to_string(st.eta);
}

DdpmObjective ddpm(const char* kind, int64_t T = 1000) { return DdpmObjective(NoiseSchedule(kind, T), "eps", false, 0.0); }
FlowMatchingObjective flow() { return FlowMatchingObjective("uniform", 0.0, 1.0, false); }

Denoiser oracle(const Objective& o, const GaussianData& d, const char* output) {
  return testing_oracle::gaussian_oracle(o, d.mu, d.s, output);
}

// Largest per-gene error of the sample mean and of sd / s - 1.
double worst_error(const Tensor& x, const GaussianData& d) {
  Tensor mean = x.to(at::kDouble).mean(0), sd = x.to(at::kDouble).std(0);
  return std::max((mean - d.mu.to(at::kDouble)).abs().max().item<double>(),
                  (sd / d.s.to(at::kDouble) - 1).abs().max().item<double>());
}

}  // namespace

// On the DDPM objective, DDPM and DDIM follow the closed-form moments of the
// discretised sampler: this checks every coefficient of the generic path
// formulas against the discrete-schedule derivation, and the respacing.
TEST(Samplers, DdpmObjectiveMatchesClosedFormMoments) {
  const GaussianData d = gaussian_data();
  uint64_t seed = 10;
  for (const char* kind : {"linear", "cosine"}) {
    NoiseSchedule schedule(kind, 1000);
    DdpmObjective o = ddpm(kind);
    for (const SamplerSettings& st :
         {settings("ddpm", 200), settings("ddim", 50), settings("ddim", 100, 1.0), settings("ddpm", 7)}) {
      expect_moments(run(oracle(o, d, "eps"), o, st, ++seed), exact(schedule, st, d), 0.0, 0.0,
                     describe(kind, st));
    }
  }
}

// Every sampler recovers the data distribution N(mu, s^2) with both objectives
// and every output parametrisation (B = 4000, as a user would check): 0.03 in
// the mean and 7% in the sd on top of 4 Monte Carlo standard errors.
TEST(Samplers, RecoverKnownGaussianWithEveryObjective) {
  const GaussianData d = gaussian_data();
  const std::vector<Moments> target = truth(d);
  uint64_t seed = 100;
  FlowMatchingObjective fm = flow();
  for (const char* output : {"eps", "v", "x0"}) {
    DdpmObjective o(NoiseSchedule("cosine", 1000), output, false, 0.0);
    for (const SamplerSettings& st : {settings("ddim", 50), settings("euler", 50), settings("heun", 25),
                                      settings("ddpm", 200), settings("ddim", 200, 1.0)}) {
      expect_moments(run(oracle(o, d, output), o, st, ++seed, 4000), target, 0.03, 0.07,
                     describe(std::string("ddpm/") + output, st));
    }
  }
  for (const SamplerSettings& st : {settings("euler", 100), settings("heun", 25), settings("ddim", 100),
                                    settings("ddpm", 200), settings("ddim", 200, 1.0)}) {
    expect_moments(run(oracle(fm, d, "velocity"), fm, st, ++seed, 4000), target, 0.03, 0.07,
                   describe("flow", st));
  }
}

// On the straight path Euler and deterministic DDIM are the same update, and
// Heun (second order) is far more accurate than Euler for the same steps.
TEST(Samplers, EulerIsDdimAndHeunIsSecondOrder) {
  const GaussianData d = gaussian_data();
  FlowMatchingObjective fm = flow();
  Denoiser net = oracle(fm, d, "velocity");
  Tensor euler = run(net, fm, settings("euler", 10), 3, 2000);
  Tensor ddim = run(net, fm, settings("ddim", 10), 3, 2000);
  EXPECT_TRUE(at::allclose(euler, ddim, 1e-4, 1e-5)) << "max diff " << (euler - ddim).abs().max().item<float>();
  DdpmObjective o = ddpm("cosine");
  Denoiser eps_net = oracle(o, d, "eps");
  EXPECT_TRUE(at::allclose(run(eps_net, o, settings("euler", 20), 3, 500), run(eps_net, o, settings("ddim", 20), 3, 500),
                           1e-4, 1e-4));
  // Same noise, deterministic ODE: the error against N(mu, s^2) is mostly
  // discretisation. Heun with 10 steps (19 evaluations) beats Euler with 20,
  // and with 25 steps is within Monte Carlo error.
  const double e_euler = worst_error(run(net, fm, settings("euler", 20), 4, 20000), d);
  const double e_heun = worst_error(run(net, fm, settings("heun", 10), 4, 20000), d);
  EXPECT_LT(e_heun, e_euler) << "heun " << e_heun << " euler " << e_euler;
  EXPECT_LT(worst_error(run(net, fm, settings("heun", 25), 4, 20000), d), 0.03);
}

TEST(Samplers, DeterministicGivenTheSeed) {
  const GaussianData d = gaussian_data();
  DdpmObjective o = ddpm("cosine", 100);
  for (const char* method : {"ddim", "ddpm", "euler", "heun"}) {
    SamplerSettings s = settings(method, 20);
    Tensor a = run(oracle(o, d, "eps"), o, s, 4, 64);
    Tensor b = run(oracle(o, d, "eps"), o, s, 4, 64);
    Tensor c = run(oracle(o, d, "eps"), o, s, 5, 64);
    EXPECT_TRUE(at::equal(a, b)) << method << ": same seed, different samples";
    EXPECT_FALSE(at::equal(a, c)) << method << ": different seed, same samples";
  }
}

TEST(Samplers, NegativeControlWrongDenoiserFails) {
  // A network that predicts zero velocity leaves the noise where it is: the
  // Gaussian check must be able to fail.
  const GaussianData d = gaussian_data();
  FlowMatchingObjective fm = flow();
  Denoiser zero = [](const Tensor& x_t, const Tensor&, const Covariates&) {
    return GeneOutput{at::zeros_like(x_t), Tensor()};
  };
  Tensor x = run(zero, fm, settings("euler", 50), 6, 2000);
  EXPECT_GT(worst_error(x, d), 0.5) << "a zero network matched the data";
}

TEST(Samplers, ClippingBoundsRespected) {
  const GaussianData d = gaussian_data();
  Tensor low = d.mu - 0.5 * d.s, high = d.mu + 0.5 * d.s;  // much narrower than the data
  DdpmObjective o = ddpm("cosine", 200);
  FlowMatchingObjective fm = flow();
  for (const char* method : {"ddim", "ddpm", "euler", "heun"}) {
    for (const Objective* objective : {static_cast<const Objective*>(&o), static_cast<const Objective*>(&fm)}) {
      const char* output = objective == &o ? "eps" : "velocity";
      SamplerSettings s = settings(method, 40);
      Tensor free = run(oracle(*objective, d, output), *objective, s, 7, 1000);
      const bool outside = at::any(free < low.unsqueeze(0)).item<bool>() || at::any(free > high.unsqueeze(0)).item<bool>();
      EXPECT_TRUE(outside) << method << ": without clipping samples should leave the narrow box";
      s.clip_low = low;
      s.clip_high = high;
      Tensor clipped = run(oracle(*objective, d, output), *objective, s, 7, 1000);
      // The last step lands on (a combination of) clipped x_0 predictions.
      EXPECT_TRUE(at::all(clipped >= low.unsqueeze(0) - 1e-4).item<bool>()) << method << " " << objective->name();
      EXPECT_TRUE(at::all(clipped <= high.unsqueeze(0) + 1e-4).item<bool>()) << method << " " << objective->name();
    }
  }
}

TEST(Samplers, LearnedVarianceUsesScaleHead) {
  // A scale head saturated at -20 selects the posterior variance: identical to
  // an objective without learned variance; +20 (beta) gives other samples.
  const GaussianData d = gaussian_data();
  DdpmObjective fixed(NoiseSchedule("linear", 100), "eps", false, 0.0);
  DdpmObjective learned(NoiseSchedule("linear", 100), "eps", true, 0.001);
  auto with_scale = [&](double scale) -> Denoiser {
    Denoiser exact = oracle(learned, d, "eps");
    return [exact, scale](const Tensor& x_t, const Tensor& t, const Covariates& c) {
      GeneOutput o = exact(x_t, t, c);
      return GeneOutput{o.value, at::full_like(o.value, scale)};
    };
  };
  Tensor a = run(oracle(fixed, d, "eps"), fixed, settings("ddpm", 25), 8, 256);
  Tensor b = run(with_scale(-20.0), learned, settings("ddpm", 25), 8, 256);
  Tensor c = run(with_scale(20.0), learned, settings("ddpm", 25), 8, 256);
  EXPECT_TRUE(at::allclose(a, b, 1e-4, 1e-4)) << "max diff " << (a - b).abs().max().item<float>();
  EXPECT_FALSE(at::allclose(a, c, 1e-3, 1e-3));
}

TEST(Samplers, UnknownMethod) {
  const GaussianData d = gaussian_data();
  FlowMatchingObjective fm = flow();
  try {
    run(oracle(fm, d, "velocity"), fm, settings("rk4", 10), 1, 4);
    FAIL() << "unknown sampler accepted";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("rk4"), std::string::npos) << m;
    EXPECT_NE(m.find("'ddim', 'ddpm', 'euler', 'heun'"), std::string::npos) << m;
  }
  EXPECT_EQ(sampler_names(), (std::vector<std::string>{"ddim", "ddpm", "euler", "heun"}));
}

TEST(Samplers, RenoiseAndDenoise) {
  const GaussianData d = gaussian_data();
  FlowMatchingObjective fm = flow();
  at::Generator g = at::detail::createCPUGenerator(2);
  Tensor x0 = at::normal(0.0, 1.0, {4000, kGenes}, g) * d.s + d.mu;
  auto redo = [&](double level) {
    at::Generator gen = at::detail::createCPUGenerator(9);
    return renoise_and_denoise(oracle(fm, d, "velocity"), fm, x0, {}, level, settings("heun", 20), gen);
  };
  EXPECT_TRUE(at::equal(redo(0.0), x0));
  const auto corr = [&](const Tensor& y) {
    Tensor a = x0 - x0.mean(0), b = y - y.mean(0);
    return ((a * b).sum(0) / (a.pow(2).sum(0).sqrt() * b.pow(2).sum(0).sqrt())).mean().item<double>();
  };
  const double low = corr(redo(0.2)), high = corr(redo(0.8)), full = corr(redo(1.0));
  EXPECT_GT(low, high);
  EXPECT_GT(high, full);
  EXPECT_LT(std::abs(full), 0.1) << "a full renoise forgets the input";
  // The distribution is kept at every level.
  expect_moments(redo(0.5), truth(d), 0.03, 0.07, "renoise 0.5");
  EXPECT_THROW(redo(1.5), std::invalid_argument);
}

// Inversion and transfer on Gaussian data of two conditions, x0_g ~ N(mu_c,
// s_c^2) for condition c: the probability-flow ODE of Gaussian data maps
// noise to data by z -> mu + s z, per gene, so inverting a cell of condition
// a and sampling the noise under condition b must give the quantile map
// mu_b + s_b / s_a (x - mu_a), and inverting then sampling under a again must
// give the cell back, up to the discretisation error (which shrinks with the
// steps).
TEST(Samplers, InversionRoundTripsAndTransferIsTheQuantileMap) {
  const GaussianData a = gaussian_data();
  const GaussianData b{a.mu.flip(0) * 2 + 0.5, a.s * 0.5 + 0.2};
  at::Generator g = at::detail::createCPUGenerator(12);
  const Tensor x0 = at::normal(0.0, 1.0, {256, kGenes}, g) * a.s + a.mu;  // (B, G) cells of condition a
  const Covariates from{{"condition", at::zeros({256}, at::kLong)}}, to{{"condition", at::ones({256}, at::kLong)}};
  const Tensor expected = b.mu + b.s / a.s * (x0 - a.mu);                    // (B, G)
  FlowMatchingObjective fm = flow();
  DdpmObjective o = ddpm("cosine");
  for (const Objective* objective : {static_cast<const Objective*>(&fm), static_cast<const Objective*>(&o)}) {
    const char* output = objective == &fm ? "velocity" : "eps";
    const Denoiser of_a = oracle(*objective, a, output), of_b = oracle(*objective, b, output);
    const Denoiser net = [of_a, of_b](const Tensor& x_t, const Tensor& t, const Covariates& c) {
      const Tensor in_b = (c.at("condition") == 1).unsqueeze(1);  // (B, 1)
      return GeneOutput{at::where(in_b, of_b(x_t, t, c).value, of_a(x_t, t, c).value), Tensor()};
    };
    torch::NoGradGuard no_grad;
    for (const char* method : {"euler", "heun"}) {
      const std::string what = objective->name() + " " + method;
      // Euler is first order: its round-trip error is 0.11 at 100 steps, 0.022 at 500.
      const int64_t fine = std::string(method) == "euler" ? 500 : 100;
      const double round_coarse = (transfer_cells(net, *objective, x0, from, from, settings(method, 10)) - x0)
                                      .abs().max().item<double>();
      const Tensor back = transfer_cells(net, *objective, x0, from, from, settings(method, fine));
      const double round_fine = (back - x0).abs().max().item<double>();
      EXPECT_LT(round_fine, 0.03) << what;
      EXPECT_LT(round_fine, round_coarse) << what;
      const Tensor moved = transfer_cells(net, *objective, x0, from, to, settings(method, fine));
      EXPECT_LT((moved - expected).abs().max().item<double>(), 0.05) << what;
      // The noise of a cell is the standardised cell, per gene.
      const Tensor noise = invert_to_noise(net, *objective, x0, from, settings(method, fine));
      EXPECT_LT((noise - (x0 - a.mu) / a.s).abs().max().item<double>(), 0.05) << what;
    }
  }
  // Inversion needs a deterministic sampler.
  const Denoiser net = oracle(fm, a, "velocity");
  for (const SamplerSettings& st : {settings("ddpm", 10), settings("ddim", 10, 0.5)}) {
    EXPECT_THROW(invert_to_noise(net, fm, x0, {}, st), std::invalid_argument) << st.method;
  }
}

TEST(Guidance, ScaleOneAndScaleW) {
  // Toy network: value = x_t + 10 * code (null = -1), scale = code.
  int calls = 0;
  Denoiser toy = [&calls](const Tensor& x_t, const Tensor&, const Covariates& c) {
    ++calls;
    Tensor cf = c.at("condition").to(at::kFloat).unsqueeze(1);
    return GeneOutput{x_t + 10 * cf, at::zeros_like(x_t) + cf};
  };
  Tensor x = at::randn({5, 4});
  Tensor t = at::full({5}, 0.3);
  Covariates c{{"condition", at::tensor(std::vector<int64_t>{0, 1, 2, 1, 0})}};

  GeneOutput plain = toy(x, t, c);
  calls = 0;
  GeneOutput one = with_guidance(toy, 1.0)(x, t, c);
  EXPECT_TRUE(at::equal(one.value, plain.value));
  EXPECT_EQ(calls, 1) << "scale 1 should call the network once";
  for (double w : {0.0, 2.0, 3.5}) {
    GeneOutput guided = with_guidance(toy, w)(x, t, c);
    Tensor cond = x + 10 * c.at("condition").to(at::kFloat).unsqueeze(1);
    Tensor null = x - 10.0;
    EXPECT_TRUE(at::allclose(guided.value, null + w * (cond - null), 1e-5, 1e-5)) << "w = " << w;
    EXPECT_TRUE(at::equal(guided.scale, plain.scale)) << "variance head should be the conditional one";
  }
  // Without covariates there is nothing to guide.
  Denoiser unconditional = [](const Tensor& x_t, const Tensor&, const Covariates&) {
    return GeneOutput{x_t * 2, Tensor()};
  };
  EXPECT_TRUE(at::equal(with_guidance(unconditional, 3.0)(x, t, {}).value, x * 2));
}
