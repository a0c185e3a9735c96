// Objective stage: noise schedules, the DDPM loss on continuous time, flow
// matching, minibatch OT pairing and the objective table.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <algorithm>
#include <numeric>
#include <string>

#include "data/covariate_groups.hpp"
#include "objective/ddpm.hpp"
#include "objective/flow_matching.hpp"
#include "objective/noise_schedule.hpp"
#include "objective/objectives.hpp"
#include "objective/ot_pairing.hpp"

using namespace exprflow;

namespace {

void expect_valid_schedule(const NoiseSchedule& s) {
  const int64_t T = s.timesteps();
  for (int64_t t = 0; t < T; ++t) {
    ASSERT_GT(s.beta(t), 0.0) << s.kind() << " beta at t = " << t;
    ASSERT_LT(s.beta(t), 1.0) << s.kind() << " beta at t = " << t;
    ASSERT_NEAR(s.alpha_bar(t), s.alpha_bar_prev(t) * (1 - s.beta(t)), 1e-15);
    if (t > 0) ASSERT_LT(s.alpha_bar(t), s.alpha_bar(t - 1)) << s.kind() << " alpha_bar not decreasing at " << t;
    // Posterior variance of q(x_{t-1} | x_t, x_0) is below beta_t.
    ASSERT_LE(s.posterior_variance(t), s.beta(t) * (1 + 1e-12));
  }
  EXPECT_EQ(s.alpha_bar_prev(0), 1.0);
  EXPECT_EQ(s.posterior_variance(0), 0.0);
}

}  // namespace

TEST(NoiseSchedule, Linear) {
  NoiseSchedule s("linear", 1000);
  EXPECT_EQ(s.kind(), "linear");
  EXPECT_EQ(s.timesteps(), 1000);
  expect_valid_schedule(s);
  EXPECT_NEAR(s.beta(0), 1e-4, 1e-15);
  EXPECT_NEAR(s.beta(999), 0.02, 1e-15);
  EXPECT_NEAR(s.beta(500) - s.beta(499), (0.02 - 1e-4) / 999, 1e-15) << "not linear";
  // Ho et al.: alpha_bar_T about 4e-5 at T = 1000.
  EXPECT_GT(s.alpha_bar(999), 1e-5);
  EXPECT_LT(s.alpha_bar(999), 1e-4);

  // Fewer steps: betas rescaled by 1000 / T.
  NoiseSchedule short_s("linear", 100);
  expect_valid_schedule(short_s);
  EXPECT_NEAR(short_s.beta(0), 1e-3, 1e-15);
  EXPECT_NEAR(short_s.beta(99), 0.2, 1e-15);
}

TEST(NoiseSchedule, Cosine) {
  for (int64_t T : {100, 1000}) {
    NoiseSchedule s("cosine", T);
    EXPECT_EQ(s.timesteps(), T);
    expect_valid_schedule(s);
    EXPECT_LT(s.alpha_bar(T - 1), 1e-4) << "cosine alpha_bar(T-1) should be close to 0, T = " << T;
    EXPECT_GT(s.alpha_bar(0), 0.999) << "cosine alpha_bar(0) should be close to 1, T = " << T;
    EXPECT_LE(s.beta(T - 1), 0.999);
    // alpha_bar(t) = f(t+1) / f(0) away from the clip.
    const double sh = 0.008;
    auto f = [&](double t) {
      const double v = std::cos((t / T + sh) / (1 + sh) * M_PI / 2);
      return v * v;
    };
    for (int64_t t : {int64_t(0), T / 4, T / 2, 3 * T / 4}) {
      EXPECT_NEAR(s.alpha_bar(t), f(t + 1) / f(0), 1e-12) << "t = " << t;
    }
  }
}

TEST(NoiseSchedule, Errors) {
  try {
    NoiseSchedule s("quadratic", 100);
    FAIL() << "unknown schedule accepted";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("quadratic"), std::string::npos) << m;
    EXPECT_NE(m.find("'cosine'"), std::string::npos) << m;
    EXPECT_NE(m.find("'linear'"), std::string::npos) << m;
  }
  EXPECT_THROW(NoiseSchedule("linear", 1), std::invalid_argument);
  NoiseSchedule s("linear", 10);
  EXPECT_THROW(s.respaced({0, 10}), std::out_of_range);
  EXPECT_THROW(timestep_subsequence(10, 0), std::invalid_argument);
}

TEST(NoiseSchedule, CoefficientsTable) {
  NoiseSchedule s("cosine", 200);
  Tensor t = at::tensor(std::vector<int64_t>{0, 1, 57, 199});
  NoiseSchedule::Coefficients c = s.at(t);
  ASSERT_EQ(c.sqrt_alpha_bar.sizes(), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(c.sqrt_alpha_bar.scalar_type(), at::kFloat);
  for (int64_t i = 0; i < 4; ++i) {
    const int64_t tt = t[i].item<int64_t>();
    const double ab = s.alpha_bar(tt), ab_prev = s.alpha_bar_prev(tt);
    EXPECT_NEAR(c.sqrt_alpha_bar[i][0].item<float>(), std::sqrt(ab), 1e-6);
    EXPECT_NEAR(c.sqrt_one_minus_alpha_bar[i][0].item<float>(), std::sqrt(1 - ab), 1e-6);
    EXPECT_NEAR(c.log_beta[i][0].item<float>(), std::log(s.beta(tt)), 1e-4);
    // Noise-free x_t = sqrt(ab) x0 has posterior mean sqrt(ab_prev) x0.
    const double mean = c.posterior_mean_x0[i][0].item<float>() +
                        c.posterior_mean_xt[i][0].item<float>() * std::sqrt(ab);
    EXPECT_NEAR(mean, std::sqrt(ab_prev), 1e-5) << "posterior mean coefficients at t = " << tt;
    const double expected_log_var = std::log(tt == 0 ? s.posterior_variance(1) : s.posterior_variance(tt));
    EXPECT_NEAR(c.posterior_log_variance[i][0].item<float>(), expected_log_var, 1e-4) << "t = " << tt;
  }
}

TEST(NoiseSchedule, RespacedKeepsAlphaBar) {
  for (const char* kind : {"linear", "cosine"}) {
    NoiseSchedule s(kind, 1000);
    const std::vector<int64_t> kept = timestep_subsequence(1000, 50);
    NoiseSchedule r = s.respaced(kept);
    ASSERT_EQ(r.timesteps(), 50);
    expect_valid_schedule(r);
    // Relative 1e-10, or 1e-15 absolute: going through betas loses relative
    // precision only where alpha_bar itself is ~1e-9 (the cosine's last step).
    auto tol = [](double ab) { return 1e-10 * ab + 1e-15; };
    for (int64_t i = 0; i < 50; ++i) {
      EXPECT_NEAR(r.alpha_bar(i), s.alpha_bar(kept[i]), tol(s.alpha_bar(kept[i]))) << kind << " respaced step " << i;
    }
    // Irregular subsequence, too.
    const std::vector<int64_t> odd = {3, 4, 100, 640, 999};
    NoiseSchedule r2 = s.respaced(odd);
    for (size_t i = 0; i < odd.size(); ++i) {
      EXPECT_NEAR(r2.alpha_bar(i), s.alpha_bar(odd[i]), tol(s.alpha_bar(odd[i]))) << kind << " step " << i;
    }
    // Respacing onto every step is the original schedule.
    std::vector<int64_t> all(1000);
    for (int64_t t = 0; t < 1000; ++t) all[t] = t;
    NoiseSchedule same = s.respaced(all);
    for (int64_t t = 0; t < 1000; t += 37) EXPECT_NEAR(same.beta(t), s.beta(t), 1e-12);
  }
}

TEST(NoiseSchedule, TimestepSubsequence) {
  for (int64_t n : {2, 3, 7, 50, 200, 999, 1000}) {
    const std::vector<int64_t> seq = timestep_subsequence(1000, n);
    ASSERT_EQ(static_cast<int64_t>(seq.size()), n) << "n = " << n;
    EXPECT_EQ(seq.front(), 0) << "n = " << n;
    EXPECT_EQ(seq.back(), 999) << "n = " << n;
    for (size_t i = 1; i < seq.size(); ++i) ASSERT_LT(seq[i - 1], seq[i]) << "n = " << n;
  }
  EXPECT_EQ(timestep_subsequence(10, 100).size(), 10u) << "more steps than timesteps: all of them";
  const std::vector<int64_t> one = timestep_subsequence(10, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], 9);
}

TEST(Ddpm, PredictX0InvertsQSample) {
  for (const char* kind : {"linear", "cosine"}) {
    NoiseSchedule s(kind, 1000);
    at::manual_seed(7);
    const int64_t B = 1000, G = 8;
    Tensor t = at::arange(0, 1000, at::TensorOptions().dtype(at::kLong));
    Tensor x0 = at::randn({B, G}), eps = at::randn({B, G});
    NoiseSchedule::Coefficients c = s.at(t);
    Tensor x_t = c.sqrt_alpha_bar * x0 + c.sqrt_one_minus_alpha_bar * eps;
    Tensor back = predict_x0_from_eps(c, x_t, eps);
    // Float rounding of x_t is amplified by 1 / sqrt(alpha_bar) at large t.
    Tensor tol = 1e-5 + 4e-7 * (x_t.abs() + 1) / c.sqrt_alpha_bar;
    EXPECT_TRUE(at::all((back - x0).abs() <= tol).item<bool>())
        << kind << ": max error " << (back - x0).abs().max().item<float>();
  }
}

TEST(Ddpm, LearnedLogVarianceEndpoints) {
  // fraction = (tanh(scale) + 1) / 2: +-20 saturate to beta_t / the posterior
  // variance, 0 is half-way (in log space).
  NoiseSchedule s("linear", 100);
  NoiseSchedule::Coefficients c = s.at(at::tensor(std::vector<int64_t>{5, 50}));
  Tensor one = at::full({2, 3}, 20.0), minus = at::full({2, 3}, -20.0);
  EXPECT_TRUE(at::allclose(learned_log_variance(c, one), c.log_beta.expand({2, 3})));
  EXPECT_TRUE(at::allclose(learned_log_variance(c, minus), c.posterior_log_variance.expand({2, 3})));
  Tensor mid = learned_log_variance(c, at::zeros({2, 3}));
  EXPECT_TRUE(at::allclose(mid, (0.5 * (c.log_beta + c.posterior_log_variance)).expand({2, 3})));
}

TEST(Ddpm, OracleNetworkHasZeroLoss) {
  NoiseSchedule s("cosine", 100);
  at::manual_seed(8);
  const int64_t B = 64, G = 12;
  Tensor x0 = at::randn({B, G}) * 2;
  Tensor noise = at::randn({B, G});
  Tensor t = at::randint(1, 100, {B}, at::TensorOptions().dtype(at::kLong));  // t > 0: KL terms
  Covariates cond;

  auto oracle = [&](double scale) -> Denoiser {
    return [&noise, scale](const Tensor& x_t, const Tensor&, const Covariates&) {
      return GeneOutput{noise.clone(), at::full_like(x_t, scale)};
    };
  };
  Denoiser zero = [](const Tensor& x_t, const Tensor&, const Covariates&) {
    return GeneOutput{at::zeros_like(x_t), at::zeros_like(x_t)};
  };

  DdpmObjective plain(s, "eps", /*learn_sigma=*/false, 0.001);
  LossOutput l = plain.loss_at(oracle(0.0), x0, cond, t, noise);
  EXPECT_EQ(l.parts.at("mse").item<double>(), 0.0);
  EXPECT_EQ(l.total.item<double>(), 0.0);
  LossOutput lz = plain.loss_at(zero, x0, cond, t, noise);
  EXPECT_NEAR(lz.parts.at("mse").item<double>(), noise.pow(2).mean().item<double>(), 1e-6);
  EXPECT_NEAR(lz.total.item<double>(), lz.parts.at("mse").item<double>(), 1e-9);

  // Learned sigma: the oracle whose scale head saturates at the posterior
  // variance (scale -20) has a zero KL for t > 0; at beta_t (+20) it does not.
  DdpmObjective learned(s, "eps", /*learn_sigma=*/true, 0.001);
  LossOutput exact = learned.loss_at(oracle(-20.0), x0, cond, t, noise);
  EXPECT_EQ(exact.parts.at("mse").item<double>(), 0.0);
  EXPECT_NEAR(exact.total.item<double>(), 0.0, 1e-3) << "KL with the true mean and variance";
  LossOutput wrong_var = learned.loss_at(oracle(20.0), x0, cond, t, noise);
  EXPECT_EQ(wrong_var.parts.at("mse").item<double>(), 0.0);
  // With the true mean, KL(N(m, v) || N(m, beta)) = (log(beta / v) + v / beta - 1) / 2,
  // averaged over cells and genes, weighted by vlb_weight * T.
  double kl = 0;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t ti = t[i].item<int64_t>();
    const double v = s.posterior_variance(ti), b = s.beta(ti);
    kl += 0.5 * (std::log(b / v) + v / b - 1);
  }
  const double expected = 0.001 * 100 * kl / B;
  ASSERT_GT(expected, 1e-4);
  EXPECT_NEAR(wrong_var.total.item<double>(), expected, 0.01 * expected) << "KL of the variance head";

  // The random-t version is reproducible from the generator.
  at::Generator g1 = at::detail::createCPUGenerator(5), g2 = at::detail::createCPUGenerator(5);
  const double a = learned.loss(zero, x0, cond, g1).total.item<double>();
  const double b = learned.loss(zero, x0, cond, g2).total.item<double>();
  EXPECT_EQ(a, b);
  EXPECT_GT(a, 0.5) << "zero network's eps-loss should be about 1";
}

TEST(Ddpm, VariationalTermTrainsOnlyTheScaleHead) {
  NoiseSchedule s("linear", 100);
  at::manual_seed(9);
  const int64_t B = 16, G = 4;
  Tensor x0 = at::randn({B, G}), noise = at::randn({B, G});
  Tensor t = at::randint(0, 100, {B}, at::TensorOptions().dtype(at::kLong));
  Covariates cond;
  Tensor value = at::zeros({B, G}).set_requires_grad(true);
  Tensor scale = at::zeros({B, G}).set_requires_grad(true);
  Denoiser net = [&](const Tensor&, const Tensor&, const Covariates&) { return GeneOutput{value * 1, scale * 1}; };
  DdpmObjective learned(s, "eps", true, 0.001);
  LossOutput l = learned.loss_at(net, x0, cond, t, noise);
  l.total.backward();
  // d total / d value comes from the MSE alone: 2 (value - noise) / (B G).
  EXPECT_TRUE(at::allclose(value.grad(), 2 * (value.detach() - noise) / (B * G), 1e-5, 1e-7));
  EXPECT_GT(scale.grad().abs().sum().item<float>(), 0.0f);
}

TEST(Ddpm, ContinuousTimeMatchesTheDiscreteSchedule) {
  NoiseSchedule s("cosine", 100);
  DdpmObjective o(s, "v", false, 0.0);
  EXPECT_EQ(o.alpha(0.0), 1.0);
  EXPECT_EQ(o.sigma(0.0), 0.0);
  for (int64_t k : {0, 1, 37, 99}) {
    const double t = (k + 1) / 100.0;
    EXPECT_NEAR(o.alpha(t), std::sqrt(s.alpha_bar(k)), 1e-9) << "k " << k;
    EXPECT_NEAR(o.alpha(t) * o.alpha(t) + o.sigma(t) * o.sigma(t), 1.0, 1e-12);
  }
  // Monotone in between.
  double last = 1.0;
  for (double t = 0.001; t <= 1.0; t += 0.001) {
    ASSERT_LE(o.alpha(t), last + 1e-15) << "t " << t;
    last = o.alpha(t);
  }
  // The grid: the kept steps from the noisiest down, then t = 0.
  const std::vector<double> grid = o.time_grid(4);
  ASSERT_EQ(grid.size(), 5u);
  EXPECT_DOUBLE_EQ(grid.front(), 1.0);
  EXPECT_DOUBLE_EQ(grid[3], 0.01);
  EXPECT_EQ(grid.back(), 0.0);
  EXPECT_THROW(o.time_grid(101), std::invalid_argument);
  EXPECT_THROW(o.time_grid(0), std::invalid_argument);
  EXPECT_TRUE(at::allclose(o.time_of(at::tensor(std::vector<int64_t>{0, 99})), at::tensor(std::vector<float>{0.01f, 1.0f})));
}

TEST(Ddpm, PredictionsInvertTheNoisingForEveryParametrisation) {
  NoiseSchedule s("linear", 1000);
  at::manual_seed(3);
  Tensor x0 = at::randn({16, 5}), eps = at::randn({16, 5});
  for (const char* prediction : {"eps", "v", "x0"}) {
    DdpmObjective o(s, prediction, false, 0.0);
    for (double t : {0.05, 0.5, 0.9}) {
      const double a = o.alpha(t), g = o.sigma(t);
      Tensor x_t = a * x0 + g * eps;
      Tensor out = std::string(prediction) == "eps" ? eps : std::string(prediction) == "v" ? a * eps - g * x0 : x0;
      Prediction p = o.predict({out, Tensor()}, x_t, t);
      EXPECT_TRUE(at::allclose(p.x0, x0, 1e-3, 1e-4)) << prediction << " t " << t;
      EXPECT_TRUE(at::allclose(p.eps, eps, 1e-3, 1e-4)) << prediction << " t " << t;
    }
  }
  EXPECT_THROW(DdpmObjective(s, "score", false, 0.0), std::invalid_argument);
}

TEST(FlowMatching, PathPredictionsAndOracleLoss) {
  FlowMatchingObjective o("uniform", 0.0, 1.0, false);
  EXPECT_EQ(o.alpha(0.25), 0.75);
  EXPECT_EQ(o.sigma(0.25), 0.25);
  at::manual_seed(4);
  const int64_t B = 32, G = 6;
  Tensor x0 = at::randn({B, G}), noise = at::randn({B, G}), t = at::rand({B});
  // The velocity of the straight path is noise - x0, whatever t.
  Denoiser oracle = [&](const Tensor&, const Tensor&, const Covariates&) { return GeneOutput{noise - x0, Tensor()}; };
  Denoiser zero = [](const Tensor& x, const Tensor&, const Covariates&) { return GeneOutput{at::zeros_like(x), Tensor()}; };
  EXPECT_NEAR(o.loss_at(oracle, x0, {}, t, noise).total.item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(o.loss_at(zero, x0, {}, t, noise).total.item<double>(), (noise - x0).pow(2).mean().item<double>(), 1e-6);
  // The network sees x_t = (1 - t) x0 + t noise and t itself.
  Denoiser check = [&](const Tensor& x_t, const Tensor& time, const Covariates&) {
    EXPECT_TRUE(at::allclose(x_t, (1 - t.unsqueeze(1)) * x0 + t.unsqueeze(1) * noise, 1e-5, 1e-6));
    EXPECT_TRUE(at::equal(time, t));
    return GeneOutput{at::zeros_like(x_t), Tensor()};
  };
  o.loss_at(check, x0, {}, t, noise);
  // predict(): x0 and eps back from the velocity.
  const double tt = 0.3;
  Prediction p = o.predict({noise - x0, Tensor()}, (1 - tt) * x0 + tt * noise, tt);
  EXPECT_TRUE(at::allclose(p.x0, x0, 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(p.eps, noise, 1e-4, 1e-5));
  const std::vector<double> grid = o.time_grid(4);
  EXPECT_EQ(grid, (std::vector<double>{1.0, 0.75, 0.5, 0.25, 0.0}));
  EXPECT_EQ(o.default_sampler(), "euler");
  EXPECT_EQ(o.output_heads(), 1);
}

TEST(FlowMatching, TimeDistributions) {
  at::Generator g = at::detail::createCPUGenerator(1);
  FlowMatchingObjective uniform("uniform", 0.0, 1.0, false);
  Tensor u = uniform.draw_times(20000, g);
  EXPECT_NEAR(u.mean().item<double>(), 0.5, 0.01);
  EXPECT_NEAR(u.var().item<double>(), 1.0 / 12, 0.003);
  FlowMatchingObjective logit("logit_normal", 0.0, 1.0, false);
  Tensor l = logit.draw_times(20000, g);
  EXPECT_TRUE(at::all(l > 0).item<bool>() && at::all(l < 1).item<bool>());
  EXPECT_NEAR(l.mean().item<double>(), 0.5, 0.01);
  EXPECT_LT(l.var().item<double>(), 1.0 / 12) << "logit-normal concentrates on mid-way times";
  EXPECT_NEAR(at::logit(l).std().item<double>(), 1.0, 0.03);
  EXPECT_THROW(FlowMatchingObjective("beta", 0.0, 1.0, false), std::invalid_argument);
  EXPECT_THROW(FlowMatchingObjective("logit_normal", 0.0, 0.0, false), std::invalid_argument);
}

TEST(OtPairing, AssignmentIsOptimalAgainstBruteForce) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 10);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t n = 1 + trial % 6;
    std::vector<double> cost(n * n);
    for (double& c : cost) c = u(rng);
    const std::vector<int64_t> a = min_cost_assignment(cost, n);
    std::vector<int64_t> seen = a;
    std::sort(seen.begin(), seen.end());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], i) << "not a permutation";
    double got = 0;
    for (int64_t i = 0; i < n; ++i) got += cost[i * n + a[i]];
    std::vector<int64_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    double best = INFINITY;
    do {
      double total = 0;
      for (int64_t i = 0; i < n; ++i) total += cost[i * n + perm[i]];
      best = std::min(best, total);
    } while (std::next_permutation(perm.begin(), perm.end()));
    EXPECT_NEAR(got, best, 1e-9) << "n " << n;
  }
  EXPECT_THROW(min_cost_assignment({1.0, 2.0}, 2), std::invalid_argument);
}

TEST(OtPairing, PairsWithinCovariateGroupsAndShortensPaths) {
  at::manual_seed(11);
  const int64_t B = 40, G = 3;
  Tensor x0 = at::randn({B, G}) + 3, noise = at::randn({B, G});
  Tensor codes = at::arange(B, at::TensorOptions().dtype(at::kLong)) % 2;
  Covariates c{{"condition", codes}};
  Tensor paired = pair_noise(x0, noise, c);
  // A permutation of the noise rows, within each group.
  EXPECT_TRUE(at::allclose(std::get<0>(paired.sum(1).sort()), std::get<0>(noise.sum(1).sort())));
  for (int64_t i = 0; i < B; ++i) {
    const Tensor match = (noise - paired[i]).abs().sum(1) < 1e-6;  // (B,)
    const int64_t j = match.nonzero().item<int64_t>();
    EXPECT_EQ(j % 2, i % 2) << "cell " << i << " paired with noise of another group";
  }
  const double before = (x0 - noise).pow(2).sum().item<double>();
  const double after = (x0 - paired).pow(2).sum().item<double>();
  EXPECT_LT(after, before);
  // Pairing enabled in the objective still gives a finite loss.
  FlowMatchingObjective o("uniform", 0.0, 1.0, true);
  Denoiser zero = [](const Tensor& x, const Tensor&, const Covariates&) { return GeneOutput{at::zeros_like(x), Tensor()}; };
  at::Generator g = at::detail::createCPUGenerator(2);
  EXPECT_TRUE(std::isfinite(o.loss(zero, x0, c, g).total.item<double>()));
}

TEST(CovariateGroups, GroupsSetsAndSharedDraws) {
  // Two covariates: a group is a pair of codes; -1 (unconditional) is a code like any other.
  Covariates c{{"a", at::tensor(std::vector<int64_t>{0, 1, 0, 0, -1, 1, 0})},
               {"b", at::tensor(std::vector<int64_t>{2, 2, 2, 3, -1, 2, 2})}};
  const std::vector<std::vector<int64_t>> groups = covariate_groups(c, 7);
  EXPECT_EQ(groups, (std::vector<std::vector<int64_t>>{{4}, {0, 2, 6}, {3}, {1, 5}}));
  EXPECT_EQ(covariate_groups({}, 3), (std::vector<std::vector<int64_t>>{{0, 1, 2}}));
  EXPECT_THROW(covariate_groups(c, 5), std::invalid_argument);
  // Sets: each group cut in order into chunks of 2.
  const Tensor sets = cell_set_ids(groups, 7, 2, at::kCPU);
  EXPECT_TRUE(at::equal(sets, at::tensor(std::vector<int64_t>{1, 4, 1, 3, 0, 4, 2})));
  EXPECT_THROW(cell_set_ids(groups, 7, 0, at::kCPU), std::invalid_argument);
  const Tensor t = at::arange(7, at::TensorOptions().dtype(at::kFloat)) / 10;
  EXPECT_TRUE(at::allclose(shared_within_groups(t, groups),
                           at::tensor(std::vector<float>{0.0f, 0.1f, 0.0f, 0.3f, 0.4f, 0.1f, 0.0f})));
}

TEST(SharedTime, CellsOfOneGroupShareTheirNoiseTime) {
  at::manual_seed(5);
  const int64_t B = 12, G = 3;
  const Tensor x0 = at::randn({B, G});
  Covariates c{{"condition", at::arange(B, at::TensorOptions().dtype(at::kLong)) % 3}};
  Tensor seen;
  Denoiser record = [&](const Tensor& x, const Tensor& t, const Covariates&) {
    seen = t.clone();
    return GeneOutput{at::zeros_like(x), Tensor()};
  };
  auto distinct = [](const Tensor& t) { return std::get<0>(at::_unique(t)).numel(); };
  auto one_per_group = [&](const Tensor& t) {
    for (int64_t i = 0; i < B; ++i) {
      if (t[i].item<float>() != t[i % 3].item<float>()) return false;
    }
    return true;
  };
  for (bool shared : {false, true}) {
    SCOPED_TRACE(shared ? "shared" : "per cell");
    at::Generator g = at::detail::createCPUGenerator(3);
    FlowMatchingObjective flow("uniform", 0.0, 1.0, false, shared);
    flow.loss(record, x0, c, g);
    EXPECT_EQ(one_per_group(seen), shared);
    EXPECT_EQ(distinct(seen), shared ? 3 : B);
    DdpmObjective ddpm(NoiseSchedule("cosine", 1000), "v", false, 0.0, shared);
    ddpm.loss(record, x0, c, g);
    EXPECT_EQ(one_per_group(seen), shared);
  }
  Options spec = objective_defaults("flow");
  EXPECT_FALSE(spec.flag("shared_time", true));
  EXPECT_FALSE(objective_defaults("ddpm").flag("shared_time", true));
}

TEST(ObjectiveTable, NamesDefaultsAndFactories) {
  EXPECT_EQ(objective_names(), (std::vector<std::string>{"ddpm", "flow"}));
  Options ddpm = objective_defaults("ddpm");
  EXPECT_EQ(ddpm.text("prediction"), "v");
  ddpm.set("objective", "ddpm");
  EXPECT_EQ(make_objective(ddpm)->name(), "ddpm");
  EXPECT_TRUE(make_objective(ddpm)->learned_variance());
  Options flow = objective_defaults("flow");
  flow.set("objective", "flow");
  EXPECT_EQ(make_objective(flow)->name(), "flow");
  try {
    objective_defaults("score_matching");
    FAIL() << "unknown objective accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'ddpm', 'flow'"), std::string::npos) << e.what();
  }
}
