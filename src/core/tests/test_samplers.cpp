// Sample stage: DDPM / DDIM on a problem with a known exact denoiser.
//
// Data: x0_g ~ N(mu_g, s_g^2), genes independent. Then x_t | x0 is Gaussian
// and x_t ~ N(sqrt(ab) mu, ab s^2 + 1 - ab), so the MMSE noise predictor is
//   E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab).
// With it, a correct sampler must return N(mu, s^2) up to its discretisation
// error, so the per-gene mean and sd of the samples are checked against mu, s.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

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

// The exact eps predictor for the schedule the network was "trained" with.
Denoiser exact_denoiser(const NoiseSchedule& schedule, const GaussianData& d) {
  return [&schedule, d](const Tensor& x_t, const Tensor& t, const Tensor&) {
    Tensor ab = at::tensor(schedule.alpha_bars(), at::TensorOptions().dtype(at::kDouble))
                    .index_select(0, t)
                    .to(at::kFloat)
                    .unsqueeze(1);  // (B, 1)
    Tensor eps = at::sqrt(1 - ab) * (x_t - at::sqrt(ab) * d.mu) / (ab * d.s.pow(2) + 1 - ab);
    return GeneOutput{eps, at::zeros_like(x_t)};
  };
}

Tensor conditions(int64_t B) { return at::zeros({B}, at::TensorOptions().dtype(at::kLong)); }

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

Tensor run(const Denoiser& net, const NoiseSchedule& schedule, const SamplerSettings& settings,
           uint64_t seed, int64_t B = 20000) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  return sample(net, schedule, conditions(B), kGenes, settings, gen);
}

SamplerSettings settings(const char* method, int64_t steps, double eta = 0.0) {
  SamplerSettings s;
  s.method = method;
  s.steps = steps;
  s.eta = eta;
  s.learned_variance = false;
  return s;
}

std::string describe(const char* kind, const SamplerSettings& st) {
  return std::string(kind) + " " + st.method + " steps " + std::to_string(st.steps) + " eta " +
         std::to_string(st.eta);
}

}  // namespace

// Samples follow the closed-form moments of the discretised sampler: checks
// every coefficient of the DDPM / DDIM updates and of the respacing.
TEST(Samplers, MatchClosedFormMoments) {
  const GaussianData d = gaussian_data();
  uint64_t seed = 10;
  for (const char* kind : {"linear", "cosine"}) {
    NoiseSchedule schedule(kind, 1000);
    for (const SamplerSettings& st :
         {settings("ddpm", 200), settings("ddim", 50), settings("ddim", 100, 1.0), settings("ddpm", 7)}) {
      expect_moments(run(exact_denoiser(schedule, d), schedule, st, ++seed), exact(schedule, st, d), 0.0, 0.0,
                     describe(kind, st));
    }
  }
}

// The samplers recover the data distribution N(mu, s^2) (B = 4000, as a user
// would check). The settings are those whose discretisation error (closed
// form above; checked first) stays below 0.01 in the mean and 4.5% of the sd
// for every gene; on top of the Monte Carlo error (4 SE) we allow 0.03 in
// the mean and 7% in the sd (4.5% discretisation + 2.5% margin).
TEST(Samplers, RecoverKnownGaussian) {
  const GaussianData d = gaussian_data();
  const std::vector<Moments> target = truth(d);
  struct Case {
    const char* kind;
    SamplerSettings st;
  };
  const std::vector<Case> cases = {
      {"cosine", settings("ddpm", 200)}, {"linear", settings("ddpm", 1000)},
      {"cosine", settings("ddim", 50)},  {"linear", settings("ddim", 200)},
      {"cosine", settings("ddim", 200, 1.0)},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    NoiseSchedule schedule(c.kind, 1000);
    const std::vector<Moments> ideal = exact(schedule, c.st, d);
    for (int64_t g = 0; g < kGenes; ++g) {
      ASSERT_NEAR(ideal[g].mean, target[g].mean, 0.01) << describe(c.kind, c.st) << ": bias of gene " << g;
      ASSERT_NEAR(ideal[g].sd / target[g].sd, 1.0, 0.045) << describe(c.kind, c.st) << ": sd of gene " << g;
    }
    expect_moments(run(exact_denoiser(schedule, d), schedule, c.st, ++seed, 4000), target, 0.03, 0.07,
                   describe(c.kind, c.st));
  }
}

TEST(Samplers, DdimIsDeterministicGivenTheNoise) {
  const GaussianData d = gaussian_data();
  NoiseSchedule schedule("cosine", 100);
  SamplerSettings s;
  s.steps = 20;
  Tensor a = run(exact_denoiser(schedule, d), schedule, s, 4, 64);
  Tensor b = run(exact_denoiser(schedule, d), schedule, s, 4, 64);
  Tensor c = run(exact_denoiser(schedule, d), schedule, s, 5, 64);
  EXPECT_TRUE(at::equal(a, b)) << "same seed, different samples";
  EXPECT_FALSE(at::equal(a, c)) << "different seed, same samples";
}

TEST(Samplers, NegativeControlWrongDenoiserFails) {
  // A denoiser that predicts zero noise (x_0 = x_t / sqrt(ab)) should not
  // pass the Gaussian check: the check can fail.
  const GaussianData d = gaussian_data();
  NoiseSchedule schedule("linear", 1000);
  Denoiser zero = [](const Tensor& x_t, const Tensor&, const Tensor&) {
    return GeneOutput{at::zeros_like(x_t), at::zeros_like(x_t)};
  };
  SamplerSettings s;
  s.steps = 50;
  Tensor x = run(zero, schedule, s, 6, 2000);
  const double sd_ratio = (x.std(0) / d.s).mean().item<double>();
  EXPECT_GT(std::abs(sd_ratio - 1.0), 0.5) << "a zero denoiser matched the data";
}

TEST(Samplers, ClippingBoundsRespected) {
  const GaussianData d = gaussian_data();
  NoiseSchedule schedule("cosine", 200);
  Tensor low = d.mu - 0.5 * d.s, high = d.mu + 0.5 * d.s;  // much narrower than the data
  for (const char* method : {"ddim", "ddpm"}) {
    SamplerSettings s;
    s.method = method;
    s.steps = 40;
    s.learned_variance = false;
    Tensor free = run(exact_denoiser(schedule, d), schedule, s, 7, 1000);
    const bool outside = at::any(free < low.unsqueeze(0)).item<bool>() || at::any(free > high.unsqueeze(0)).item<bool>();
    EXPECT_TRUE(outside) << method << ": without clipping samples should leave the narrow box";
    s.clip_low = low;
    s.clip_high = high;
    Tensor clipped = run(exact_denoiser(schedule, d), schedule, s, 7, 1000);
    EXPECT_TRUE(at::all(clipped >= low.unsqueeze(0) - 1e-5).item<bool>()) << method << ": below clip_low";
    EXPECT_TRUE(at::all(clipped <= high.unsqueeze(0) + 1e-5).item<bool>()) << method << ": above clip_high";
  }
}

TEST(Samplers, LearnedVarianceUsesScaleHead) {
  // A scale head saturated at -20 selects the posterior variance: identical
  // to learned_variance = false.
  const GaussianData d = gaussian_data();
  NoiseSchedule schedule("linear", 100);
  Denoiser exact = exact_denoiser(schedule, d);
  Denoiser minus_one = [exact](const Tensor& x_t, const Tensor& t, const Tensor& c) {
    GeneOutput o = exact(x_t, t, c);
    return GeneOutput{o.value, at::full_like(o.value, -20.0)};
  };
  SamplerSettings fixed;
  fixed.method = "ddpm";
  fixed.steps = 25;
  fixed.learned_variance = false;
  SamplerSettings learned = fixed;
  learned.learned_variance = true;
  Tensor a = run(exact, schedule, fixed, 8, 256);
  Tensor b = run(minus_one, schedule, learned, 8, 256);
  EXPECT_TRUE(at::allclose(a, b, 1e-4, 1e-4)) << "max diff " << (a - b).abs().max().item<float>();
}

TEST(Samplers, UnknownMethod) {
  const GaussianData d = gaussian_data();
  NoiseSchedule schedule("linear", 100);
  SamplerSettings s;
  s.method = "euler";
  try {
    run(exact_denoiser(schedule, d), schedule, s, 1, 4);
    FAIL() << "unknown sampler accepted";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("euler"), std::string::npos) << m;
    EXPECT_NE(m.find("'ddim'"), std::string::npos) << m;
  }
}

TEST(Guidance, ScaleOneAndScaleW) {
  // Toy denoiser: value = x_t + 10 * condition, scale = condition.
  const int64_t null_level = 3;
  int calls = 0;
  Denoiser toy = [&calls](const Tensor& x_t, const Tensor&, const Tensor& c) {
    ++calls;
    Tensor cf = c.to(at::kFloat).unsqueeze(1);
    return GeneOutput{x_t + 10 * cf, at::zeros_like(x_t) + cf};
  };
  Tensor x = at::randn({5, 4});
  Tensor t = at::full({5}, 7, at::TensorOptions().dtype(at::kLong));
  Tensor c = at::tensor(std::vector<int64_t>{0, 1, 2, 1, 0});

  GeneOutput plain = toy(x, t, c);
  calls = 0;
  GeneOutput one = with_guidance(toy, null_level, 1.0)(x, t, c);
  EXPECT_TRUE(at::equal(one.value, plain.value));
  EXPECT_TRUE(at::equal(one.scale, plain.scale));
  EXPECT_EQ(calls, 1) << "scale 1 should call the network once";

  for (double w : {0.0, 2.0, 3.5}) {
    GeneOutput guided = with_guidance(toy, null_level, w)(x, t, c);
    Tensor eps_c = x + 10 * c.to(at::kFloat).unsqueeze(1);
    Tensor eps_null = x + 10.0 * null_level;
    Tensor expected = eps_null + w * (eps_c - eps_null);
    EXPECT_TRUE(at::allclose(guided.value, expected, 1e-5, 1e-5)) << "w = " << w;
    EXPECT_TRUE(at::equal(guided.scale, plain.scale)) << "variance head should be the conditional one";
    EXPECT_EQ(guided.value.sizes(), x.sizes());
  }
}
