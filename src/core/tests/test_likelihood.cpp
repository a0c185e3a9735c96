// Decode stage: the likelihood heads (decode/likelihood.hpp).
//
// log_prob against the closed forms evaluated in plain double with
// std::lgamma; the limits that tie the models together (NB -> Poisson,
// ZINB -> NB); normalisation; moments of the samplers against mean() and
// variance(); gradients against finite differences; and the errors.
#include <gtest/gtest.h>

#include "error_message.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "decode/likelihood.hpp"

using namespace exprflow;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

// A (rows, cols) double tensor from row-major values.
Tensor matrix(int64_t rows, int64_t cols, const std::vector<double>& values) {
  return at::tensor(values, kF64).reshape({rows, cols});
}

double ref_poisson(double x, double mu) { return x * std::log(mu) - mu - std::lgamma(x + 1); }

double ref_nb(double x, double mu, double theta) {
  return std::lgamma(x + theta) - std::lgamma(theta) - std::lgamma(x + 1) + theta * std::log(theta / (theta + mu)) +
         x * std::log(mu / (theta + mu));
}

double sigmoid(double l) { return 1 / (1 + std::exp(-l)); }

double ref_zinb(double x, double mu, double theta, double logit) {
  const double pi = sigmoid(logit);
  if (x == 0) return std::log(pi + (1 - pi) * std::exp(ref_nb(0, mu, theta)));
  return std::log(1 - pi) + ref_nb(x, mu, theta);
}

// Allowed deviation from a double reference: relative 1e-9, plus the shift
// by the eps = 1e-8 inside log(mu + eps), at most x * eps / mu.
double tolerance(double ref, double x, double mu) { return 1e-9 * (1 + std::abs(ref)) + x * 1e-8 / mu; }

// The grid of the closed-form tests: rows are (x, mu) pairs, the library
// differing per row (so rate = mu / library); columns get their own theta.
struct Grid {
  std::vector<double> xs{0, 1, 2, 3, 7, 25, 100, 1000, 10000};
  std::vector<double> mus{0.01, 0.5, 3, 40, 800};
  int64_t rows() const { return static_cast<int64_t>(xs.size() * mus.size()); }
  double x(int64_t r) const { return xs[r / mus.size()]; }
  double mu(int64_t r) const { return mus[r % mus.size()]; }
  double library(int64_t r) const { return 1000.0 + 250.0 * r; }

  Tensor library_tensor() const {
    std::vector<double> v;
    for (int64_t r = 0; r < rows(); ++r) v.push_back(library(r));
    return at::tensor(v, kF64);  // (B,)
  }
  Tensor rate(int64_t cols) const {
    std::vector<double> v;
    for (int64_t r = 0; r < rows(); ++r)
      for (int64_t c = 0; c < cols; ++c) v.push_back(mu(r) / library(r));
    return matrix(rows(), cols, v);  // (B, G)
  }
  Tensor counts(int64_t cols) const {
    std::vector<double> v;
    for (int64_t r = 0; r < rows(); ++r)
      for (int64_t c = 0; c < cols; ++c) v.push_back(x(r));
    return matrix(rows(), cols, v);  // (B, G)
  }
};

Tensor log_of(const std::vector<double>& v) { return at::log(at::tensor(v, kF64)); }


at::Generator generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

}  // namespace

// ---------------------------------------------------------------- registry

TEST(LikelihoodRegistry, NamesAndParameters) {
  EXPECT_EQ(likelihood_names(), (std::vector<std::string>{"gaussian", "nb", "poisson", "zinb"}));
  const std::vector<std::vector<std::string>> params = {
      {"rate", "log_scale"}, {"rate", "log_theta"}, {"rate"}, {"rate", "log_theta", "zero_logits"}};
  for (size_t i = 0; i < likelihood_names().size(); ++i) {
    const std::unique_ptr<Likelihood> lik = make_likelihood(likelihood_names()[i]);
    EXPECT_EQ(lik->name(), likelihood_names()[i]);
    EXPECT_EQ(lik->parameters(), params[i]) << lik->name();
  }
}

TEST(LikelihoodRegistry, UnknownNameListsValidOnes) {
  const std::string msg = error_of([] { make_likelihood("zip"); });
  EXPECT_NE(msg.find("unknown likelihood 'zip'"), std::string::npos) << msg;
  for (const std::string& name : likelihood_names()) EXPECT_NE(msg.find("'" + name + "'"), std::string::npos) << msg;
}

TEST(LikelihoodRegistry, ParamsFieldByName) {
  LikelihoodParams p;
  for (const std::string& name : LikelihoodParams::field_names()) p.field(name) = at::zeros({2, 3});
  EXPECT_TRUE(p.rate.defined() && p.log_theta.defined() && p.zero_logits.defined() && p.log_scale.defined());
  const std::string msg = error_of([&] { p.field("dispersion"); });
  EXPECT_NE(msg.find("unknown likelihood parameter 'dispersion'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'log_theta'"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- errors

TEST(LikelihoodErrors, MissingParameterIsNamed) {
  const int64_t B = 3, G = 4;
  LikelihoodParams full;
  full.rate = at::full({B, G}, 0.01);
  full.log_theta = at::zeros({G});
  full.zero_logits = at::zeros({B, G});
  full.log_scale = at::zeros({G});
  const Tensor x = at::ones({B, G}), library = at::full({B}, 100.0);
  for (const std::string& name : likelihood_names()) {
    const std::unique_ptr<Likelihood> lik = make_likelihood(name);
    for (const std::string& field : lik->parameters()) {
      LikelihoodParams p = full;
      p.field(field) = Tensor();
      at::Generator gen = generator(1);
      const std::vector<std::function<void()>> calls = {
          [&] { lik->log_prob(p, x, library); }, [&] { lik->mean(p, library); },
          [&] { lik->variance(p, library); }, [&] { lik->sample(p, library, gen); }};
      for (const auto& call : calls) {
        const std::string msg = error_of(call);
        EXPECT_NE(msg.find("likelihood '" + name + "' needs parameter '" + field + "'"), std::string::npos)
            << name << "/" << field << ": " << msg;
      }
    }
  }
}

TEST(LikelihoodErrors, ShapesAreChecked) {
  LikelihoodParams p;
  p.rate = at::full({3, 4}, 0.01);
  p.log_theta = at::zeros({5});  // G + 1
  const std::unique_ptr<Likelihood> nb = make_likelihood("nb");
  std::string msg = error_of([&] { nb->mean(p, at::ones({3})); });
  EXPECT_NE(msg.find("parameter 'log_theta' must be (G,) or (B, G)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[5]"), std::string::npos) << msg;

  p.log_theta = at::zeros({3, 4});  // per cell is fine
  EXPECT_EQ(nb->mean(p, at::ones({3})).sizes(), at::IntArrayRef({3, 4}));
  msg = error_of([&] { nb->mean(p, at::ones({2})); });
  EXPECT_NE(msg.find("library sizes must be (B,)"), std::string::npos) << msg;
  msg = error_of([&] { nb->mean(p, Tensor()); });
  EXPECT_NE(msg.find("library sizes must be (B,)"), std::string::npos) << msg;
  msg = error_of([&] { nb->log_prob(p, at::ones({4, 3}), at::ones({3})); });
  EXPECT_NE(msg.find("observations must be [3, 4]"), std::string::npos) << msg;
  p.rate = at::full({12}, 0.01);
  msg = error_of([&] { nb->mean(p, at::ones({3})); });
  EXPECT_NE(msg.find("parameter 'rate' must be (B, G)"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- log_prob

TEST(LikelihoodLogProb, PoissonMatchesClosedForm) {
  const Grid grid;
  LikelihoodParams p;
  p.rate = grid.rate(1);
  const Tensor lp = make_likelihood("poisson")->log_prob(p, grid.counts(1), grid.library_tensor());  // (B, 1)
  ASSERT_EQ(lp.sizes(), at::IntArrayRef({grid.rows(), 1}));
  for (int64_t r = 0; r < grid.rows(); ++r) {
    const double ref = ref_poisson(grid.x(r), grid.mu(r));
    EXPECT_NEAR(lp[r][0].item<double>(), ref, tolerance(ref, grid.x(r), grid.mu(r)))
        << "x=" << grid.x(r) << " mu=" << grid.mu(r);
  }
}

TEST(LikelihoodLogProb, NbMatchesClosedForm) {
  // Thetas on both sides of the switch to the Stirling form at 10.
  const std::vector<double> thetas{1e-3, 0.05, 0.7, 3, 9.999, 10, 10.001, 60, 2e3, 1e5};
  const Grid grid;
  const int64_t G = static_cast<int64_t>(thetas.size());
  LikelihoodParams p;
  p.rate = grid.rate(G);
  p.log_theta = log_of(thetas);  // (G,)
  const Tensor lp = make_likelihood("nb")->log_prob(p, grid.counts(G), grid.library_tensor());  // (B, G)
  for (int64_t r = 0; r < grid.rows(); ++r) {
    for (int64_t g = 0; g < G; ++g) {
      const double ref = ref_nb(grid.x(r), grid.mu(r), thetas[g]);
      EXPECT_NEAR(lp[r][g].item<double>(), ref, tolerance(ref, grid.x(r), grid.mu(r)))
          << "x=" << grid.x(r) << " mu=" << grid.mu(r) << " theta=" << thetas[g];
    }
  }
}

TEST(LikelihoodLogProb, NbInFloatIsAccurateForAllThetas) {
  // float32, the training dtype: the error stays at the conditioning of the
  // terms (~1e-6 of their size) for every theta, where the plain lgamma
  // difference is off by tens of nats at theta = 1e8. (Beyond 1e8 the double
  // reference itself loses digits: NbApproachesPoissonForHugeTheta.)
  const std::vector<double> thetas{0.05, 3, 60, 1e4, 1e6, 1e8};
  const Grid grid;
  const int64_t G = static_cast<int64_t>(thetas.size());
  LikelihoodParams p;
  p.rate = grid.rate(G).to(at::kFloat);
  p.log_theta = log_of(thetas).to(at::kFloat);
  const Tensor lp =
      make_likelihood("nb")->log_prob(p, grid.counts(G).to(at::kFloat), grid.library_tensor().to(at::kFloat));
  ASSERT_EQ(lp.scalar_type(), at::kFloat);
  for (int64_t r = 0; r < grid.rows(); ++r) {
    const double x = grid.x(r), mu = grid.mu(r);
    const double scale = 1 + std::abs(x * std::log(mu)) + std::lgamma(x + 1) + mu;
    for (int64_t g = 0; g < G; ++g) {
      const double ref = ref_nb(x, mu, thetas[g]);
      EXPECT_NEAR(lp[r][g].item<double>(), ref, 2e-6 * scale + x * 1e-8 / mu)
          << "x=" << x << " mu=" << mu << " theta=" << thetas[g];
    }
  }
}

TEST(LikelihoodLogProb, NbApproachesPoissonForHugeTheta) {
  // log NB - log Poisson, expanded in 1/theta:
  //   ((x - mu)^2 - x) / (2 theta) - (x (x-1) (2x-1) / 12 + mu^3 / 3 - x mu^2 / 2) / theta^2
  //   + O((x^4 + mu^4) / theta^3).
  const std::vector<double> thetas{1e6, 1e8, 1e12};
  const Grid grid;
  const int64_t G = static_cast<int64_t>(thetas.size());
  LikelihoodParams p;
  p.rate = grid.rate(G);
  p.log_theta = log_of(thetas);
  const Tensor lp = make_likelihood("nb")->log_prob(p, grid.counts(G), grid.library_tensor());
  for (int64_t r = 0; r < grid.rows(); ++r) {
    const double x = grid.x(r), mu = grid.mu(r);
    for (int64_t g = 0; g < G; ++g) {
      const double theta = thetas[g];
      const double expected = ref_poisson(x, mu) + ((x - mu) * (x - mu) - x) / (2 * theta) -
                              (x * (x - 1) * (2 * x - 1) / 12 + mu * mu * mu / 3 - x * mu * mu / 2) / (theta * theta);
      const double third_order = (std::pow(x, 4) + std::pow(mu, 4)) / std::pow(theta, 3);
      EXPECT_NEAR(lp[r][g].item<double>(), expected, tolerance(expected, x, mu) + third_order)
          << "x=" << x << " mu=" << mu << " theta=" << theta;
    }
  }
  // And in float32, at theta = 1e8, within float32 rounding of the Poisson terms.
  const double theta = 1e8;
  p.rate = grid.rate(1);
  p.log_theta = log_of({theta});
  p.rate = p.rate.to(at::kFloat);
  p.log_theta = p.log_theta.to(at::kFloat);
  LikelihoodParams q;
  q.rate = p.rate;
  const Tensor x = grid.counts(1).to(at::kFloat), library = grid.library_tensor().to(at::kFloat);
  const Tensor nb = make_likelihood("nb")->log_prob(p, x, library);
  const Tensor poisson = make_likelihood("poisson")->log_prob(q, x, library);
  for (int64_t r = 0; r < grid.rows(); ++r) {
    const double xr = grid.x(r), mu = grid.mu(r);
    const double scale = 1 + std::abs(xr * std::log(mu)) + std::lgamma(xr + 1) + mu;
    EXPECT_NEAR(nb[r][0].item<double>(), poisson[r][0].item<double>(),
                2e-6 * scale + ((xr - mu) * (xr - mu) + xr) / (2 * theta))
        << "x=" << xr << " mu=" << mu;
  }
}

TEST(LikelihoodLogProb, ZinbMatchesClosedForm) {
  const std::vector<double> thetas{0.05, 3, 10.001, 1e3};
  const std::vector<double> logits{-5, 0, 3};
  const Grid grid;
  const int64_t G = static_cast<int64_t>(thetas.size() * logits.size());
  std::vector<double> col_theta, col_logit;
  for (double t : thetas)
    for (double l : logits) col_theta.push_back(t), col_logit.push_back(l);
  LikelihoodParams p;
  p.rate = grid.rate(G);
  p.log_theta = log_of(col_theta);
  p.zero_logits = at::tensor(col_logit, kF64).expand({grid.rows(), G}).contiguous();  // (B, G)
  const Tensor lp = make_likelihood("zinb")->log_prob(p, grid.counts(G), grid.library_tensor());
  for (int64_t r = 0; r < grid.rows(); ++r) {
    for (int64_t g = 0; g < G; ++g) {
      const double ref = ref_zinb(grid.x(r), grid.mu(r), col_theta[g], col_logit[g]);
      EXPECT_NEAR(lp[r][g].item<double>(), ref, tolerance(ref, grid.x(r), grid.mu(r)))
          << "x=" << grid.x(r) << " mu=" << grid.mu(r) << " theta=" << col_theta[g] << " logit=" << col_logit[g];
    }
  }
}

TEST(LikelihoodLogProb, ZinbWithoutInflationIsNb) {
  // pi = sigmoid(-30) ~ 1e-13: the difference is ~ pi / NB(0) <= 1e-8 on
  // this grid (NB(0) >= 5e-5), and -pi off zero.
  const std::vector<double> xs{0, 1, 4, 30, 500};
  const std::vector<double> mus{0.5, 3, 10};
  const std::vector<double> thetas{0.5, 5, 1e3};
  const int64_t B = static_cast<int64_t>(xs.size() * mus.size()), G = static_cast<int64_t>(thetas.size());
  std::vector<double> x, rate;
  for (double xv : xs)
    for (double mu : mus)
      for (int64_t g = 0; g < G; ++g) x.push_back(xv), rate.push_back(mu / 100);
  LikelihoodParams p;
  p.rate = matrix(B, G, rate);
  p.log_theta = log_of(thetas);
  p.zero_logits = at::full({B, G}, -30.0, kF64);
  const Tensor library = at::full({B}, 100.0, kF64);
  const Tensor zinb = make_likelihood("zinb")->log_prob(p, matrix(B, G, x), library);
  const Tensor nb = make_likelihood("nb")->log_prob(p, matrix(B, G, x), library);
  EXPECT_LT((zinb - nb).abs().max().item<double>(), 1e-8);
}

TEST(LikelihoodLogProb, ZinbZeroMixesPointMassAndNb) {
  // P(0) = pi + (1 - pi) NB(0), for point masses from negligible to dominant.
  const std::vector<double> logits{-8, -2, 0, 1.5, 6, 40};
  const std::vector<double> mus{0.2, 5, 300};
  const int64_t B = static_cast<int64_t>(mus.size()), G = static_cast<int64_t>(logits.size());
  std::vector<double> rate, logit;
  for (double mu : mus)
    for (double l : logits) rate.push_back(mu / 50), logit.push_back(l);
  LikelihoodParams p;
  p.rate = matrix(B, G, rate);
  p.log_theta = at::full({G}, std::log(2.0), kF64);
  p.zero_logits = matrix(B, G, logit);
  const Tensor library = at::full({B}, 50.0, kF64), zeros = at::zeros({B, G}, kF64);
  const Tensor zinb = make_likelihood("zinb")->log_prob(p, zeros, library).exp();
  const Tensor nb = make_likelihood("nb")->log_prob(p, zeros, library).exp();
  const Tensor pi = at::sigmoid(p.zero_logits);
  EXPECT_TRUE(at::allclose(zinb, pi + (1 - pi) * nb, 1e-12, 1e-14));
}

TEST(LikelihoodLogProb, GaussianMatchesClosedForm) {
  const std::vector<double> xs{-4, -0.3, 0, 0.1, 2, 9};
  const std::vector<double> means{-1, 0, 0.25, 3};
  const std::vector<double> log_scales{-3, -0.5, 0, 1.2};
  const int64_t B = static_cast<int64_t>(xs.size()), G = static_cast<int64_t>(means.size());
  std::vector<double> x, m;
  for (double xv : xs)
    for (double mv : means) x.push_back(xv), m.push_back(mv);
  LikelihoodParams p;
  p.rate = matrix(B, G, m);
  p.log_scale = at::tensor(log_scales, kF64);
  const Tensor lp = make_likelihood("gaussian")->log_prob(p, matrix(B, G, x), Tensor());  // library unused
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = 0; g < G; ++g) {
      const double s = std::exp(log_scales[g]), z = (xs[b] - means[g]) / s;
      const double ref = -0.5 * z * z - std::log(s) - 0.5 * std::log(2 * M_PI);
      EXPECT_NEAR(lp[b][g].item<double>(), ref, 1e-12 * (1 + std::abs(ref)));
    }
  }
}

TEST(LikelihoodLogProb, CountProbabilitiesSumToOne) {
  // Sum over x = 0..K with K far in every tail (slowest: NB theta 0.5, mu 50,
  // tail ~ (mu / (mu + theta))^K = e^-50). The eps in log(mu + eps) scales
  // the total by exp(eps) = 1 + 1e-8.
  const int64_t K = 5000;
  const std::vector<double> mus{0.05, 1, 8, 50};
  const std::vector<double> thetas{0.5, 4, 1e3, 1e8};
  const int64_t G = static_cast<int64_t>(mus.size() * thetas.size());
  std::vector<double> col_mu, col_theta;
  for (double mu : mus)
    for (double t : thetas) col_mu.push_back(mu), col_theta.push_back(t);
  LikelihoodParams p;
  p.rate = (at::tensor(col_mu, kF64) / 1000).expand({K + 1, G}).contiguous();  // (K+1, G)
  p.log_theta = log_of(col_theta);
  p.zero_logits = at::full({K + 1, G}, -0.7, kF64);
  const Tensor x = at::arange(K + 1, kF64).unsqueeze(1).expand({K + 1, G}).contiguous();
  const Tensor library = at::full({K + 1}, 1000.0, kF64);
  for (const std::string name : {"poisson", "nb", "zinb"}) {
    const Tensor total = make_likelihood(name)->log_prob(p, x, library).exp().sum(0);  // (G,)
    for (int64_t g = 0; g < G; ++g) {
      EXPECT_NEAR(total[g].item<double>(), 1.0, 2e-8) << name << " mu=" << col_mu[g] << " theta=" << col_theta[g];
    }
  }
}

// ---------------------------------------------------------------- sampling

namespace {

struct MomentCase {
  double mu, theta, logit;  // gaussian: mean, log_scale, -
};

// n draws per case (one case per column); the sample mean must lie within 5
// standard errors sqrt(variance / n) of mean(), and the sample variance
// within 5 standard errors sqrt((m4 - s^4) / n) (m4 the sample fourth
// central moment) and 20% of variance().
void check_moments(const std::string& name, const std::vector<MomentCase>& cases, uint64_t seed) {
  const int64_t n = 20000, G = static_cast<int64_t>(cases.size());
  const std::unique_ptr<Likelihood> lik = make_likelihood(name);
  std::vector<double> rate, a, logit;
  for (const MomentCase& c : cases) {
    rate.push_back(name == "gaussian" ? c.mu : c.mu / 2000);
    a.push_back(name == "gaussian" ? c.theta : std::log(c.theta));
    logit.push_back(c.logit);
  }
  LikelihoodParams p;
  p.rate = at::tensor(rate, kF64).to(at::kFloat).expand({n, G}).contiguous();  // (n, G) float32
  p.log_theta = at::tensor(a, kF64).to(at::kFloat);                            // (G,)
  p.log_scale = p.log_theta;
  p.zero_logits = at::tensor(logit, kF64).to(at::kFloat).expand({n, G}).contiguous();
  const Tensor library = at::full({n}, 2000.0, at::TensorOptions().dtype(at::kFloat));
  at::Generator gen = generator(seed);
  const Tensor draws = lik->sample(p, library, gen).to(at::kDouble);  // (n, G)
  ASSERT_EQ(draws.sizes(), at::IntArrayRef({n, G}));
  const Tensor mean = lik->mean(p, library).to(at::kDouble)[0];          // (G,)
  const Tensor variance = lik->variance(p, library).to(at::kDouble)[0];  // (G,)
  const Tensor m = draws.mean(0);
  const Tensor centred = draws - m;
  const Tensor s2 = centred.pow(2).sum(0) / (n - 1), m4 = centred.pow(4).mean(0);
  for (int64_t g = 0; g < G; ++g) {
    const double mu = mean[g].item<double>(), var = variance[g].item<double>();
    const std::string where = name + " case " + std::to_string(g) + " (" + std::to_string(cases[g].mu) + ", " +
                              std::to_string(cases[g].theta) + ", " + std::to_string(cases[g].logit) + ")";
    if (var == 0) {  // a point mass: every draw is the mean
      EXPECT_EQ(draws.select(1, g).sub(mu).abs().max().item<double>(), 0.0) << where;
      continue;
    }
    EXPECT_NEAR(m[g].item<double>(), mu, 5 * std::sqrt(var / n)) << where;
    const double se_var = std::sqrt((m4[g].item<double>() - std::pow(s2[g].item<double>(), 2)) / n);
    EXPECT_NEAR(s2[g].item<double>(), var, 5 * se_var) << where;
    EXPECT_NEAR(s2[g].item<double>(), var, 0.2 * var) << where;
  }
}

}  // namespace

TEST(LikelihoodSample, PoissonMomentsMatch) {
  check_moments("poisson", {{0.5, 1, 0}, {5, 1, 0}, {60, 1, 0}, {0, 1, 0}}, 11);
}

TEST(LikelihoodSample, NbMomentsMatch) {
  // theta 1e9: drawn as Poisson.
  check_moments("nb", {{0.5, 1, 0}, {5, 2, 0}, {50, 1, 0}, {20, 30, 0}, {20, 1e9, 0}, {0, 2, 0}}, 12);
}

TEST(LikelihoodSample, ZinbMomentsMatch) {
  check_moments("zinb", {{5, 2, -1}, {50, 1, 0.5}, {0.5, 3, -3}, {20, 1e9, 1}}, 13);
}

TEST(LikelihoodSample, GaussianMomentsMatch) {
  check_moments("gaussian", {{0, 0, 0}, {-3, -2, 0}, {10, 1.5, 0}}, 14);
}

TEST(LikelihoodSample, SameSeedSameDraws) {
  const int64_t B = 50, G = 6;
  LikelihoodParams p;
  p.rate = at::softmax(at::randn({B, G}, generator(3), at::TensorOptions()), 1);  // (B, G)
  p.log_theta = at::linspace(-1, 3, G);
  p.zero_logits = at::linspace(-2, 2, G).expand({B, G}).contiguous();
  p.log_scale = at::linspace(-1, 1, G);
  const Tensor library = at::full({B}, 500.0);
  for (const std::string& name : likelihood_names()) {
    const std::unique_ptr<Likelihood> lik = make_likelihood(name);
    at::Generator a = generator(99), b = generator(99), c = generator(100);
    const Tensor first = lik->sample(p, library, a), second = lik->sample(p, library, b);
    EXPECT_TRUE(at::equal(first, second)) << name;
    EXPECT_FALSE(at::equal(first, lik->sample(p, library, c))) << name;
    EXPECT_FALSE(at::equal(first, lik->sample(p, library, a))) << name << ": the generator advances";
    EXPECT_EQ(first.scalar_type(), at::kFloat) << name;
  }
}

TEST(LikelihoodSample, SameSeedSameDrawsOnEveryDevice) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const int64_t B = 40, G = 5;
  LikelihoodParams p;
  p.rate = at::softmax(at::randn({B, G}, generator(4), at::TensorOptions()), 1);
  p.log_theta = at::linspace(-1, 3, G);
  p.zero_logits = at::linspace(-2, 2, G).expand({B, G}).contiguous();
  p.log_scale = at::linspace(-1, 1, G);
  const Tensor library = at::full({B}, 500.0);
  LikelihoodParams q;
  for (const std::string& field : LikelihoodParams::field_names()) q.field(field) = p.field(field).to(at::kCUDA);
  for (const std::string& name : likelihood_names()) {
    const std::unique_ptr<Likelihood> lik = make_likelihood(name);
    at::Generator a = generator(7), b = generator(7);
    const Tensor cpu = lik->sample(p, library, a);
    const Tensor gpu = lik->sample(q, library.to(at::kCUDA), b);
    EXPECT_TRUE(gpu.is_cuda()) << name;
    EXPECT_TRUE(at::equal(cpu, gpu.cpu())) << name;
  }
}

// ---------------------------------------------------------------- gradients

TEST(LikelihoodGradient, MatchesFiniteDifferences) {
  // Double precision; x = 0 in every column; thetas on both sides of 10.
  const int64_t B = 4, G = 5;
  const Tensor x = matrix(B, G, {0, 0, 0, 0, 0,     //
                                 1, 3, 0, 12, 2,    //
                                 7, 0, 40, 1, 150,  //
                                 0, 25, 2, 0, 9});
  const Tensor library = at::tensor(std::vector<double>{800, 1500, 3000, 600}, kF64);
  LikelihoodParams base;
  base.rate = at::softmax(at::randn({B, G}, generator(5), kF64), 1);
  base.log_theta = log_of({0.3, 2, 9, 40, 5e3});
  base.zero_logits = at::randn({B, G}, generator(6), kF64) * 2;
  base.log_scale = at::tensor(std::vector<double>{-1, -0.2, 0, 0.5, 1}, kF64);
  for (const std::string& name : likelihood_names()) {
    const std::unique_ptr<Likelihood> lik = make_likelihood(name);
    for (const std::string& field : lik->parameters()) {
      LikelihoodParams p = base;
      p.field(field) = base.field(field).clone().requires_grad_(true);
      lik->log_prob(p, x, library).sum().backward();
      const Tensor grad = p.field(field).grad();
      ASSERT_TRUE(grad.defined()) << name << "/" << field;
      ASSERT_TRUE(at::isfinite(grad).all().item<bool>()) << name << "/" << field;

      const Tensor value = base.field(field).flatten();
      for (int64_t i = 0; i < value.numel(); ++i) {
        const double v = value[i].item<double>();
        const double h = 1e-6 * std::max(std::abs(v), 1e-3);
        auto f = [&](double shifted) {
          LikelihoodParams q = base;
          Tensor t = base.field(field).clone();
          t.view(-1)[i] = shifted;
          q.field(field) = t;
          return lik->log_prob(q, x, library).sum().item<double>();
        };
        const double fd = (f(v + h) - f(v - h)) / (2 * h);
        const double g = grad.flatten()[i].item<double>();
        EXPECT_NEAR(g, fd, 1e-5 * (1 + std::abs(g))) << name << "/" << field << "[" << i << "]";
      }
    }
  }
}

TEST(LikelihoodGradient, FiniteAtZeroAndExtremes) {
  // Zero counts where the model expects none, counts where it expects zero,
  // dispersions far beyond the clamp, near-certain structural zeros: every
  // log-probability and gradient stays finite, in float32 and double.
  const int64_t B = 2, G = 6;
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    const auto opts = at::TensorOptions().dtype(dtype);
    LikelihoodParams p;
    p.rate = at::tensor(std::vector<double>{0, 0, 0.5, 0.5, 1e-30, 0.5, 0, 0.5, 0, 0.5, 0.5, 1e-12}, opts)
                 .reshape({B, G})
                 .requires_grad_(true);
    p.log_theta = at::tensor(std::vector<double>{-200, -35, -30, 39, 45, 200}, opts).requires_grad_(true);
    p.zero_logits = at::tensor(std::vector<double>{-100, -30, 0, 30, 100, 5, 60, -60, 0, 1, -1, 0}, opts)
                        .reshape({B, G})
                        .requires_grad_(true);
    p.log_scale = at::tensor(std::vector<double>{-10, -3, 0, 3, 10, 20}, opts).requires_grad_(true);
    const Tensor x = at::tensor(std::vector<double>{0, 0, 0, 0, 0, 0, 3, 0, 1, 0, 1000, 2}, opts).reshape({B, G});
    const Tensor library = at::tensor(std::vector<double>{1000, 1e5}, opts);
    for (const std::string& name : likelihood_names()) {
      const std::unique_ptr<Likelihood> lik = make_likelihood(name);
      for (const std::string& field : lik->parameters()) p.field(field).mutable_grad() = Tensor();
      const Tensor lp = lik->log_prob(p, x, library);
      EXPECT_TRUE(at::isfinite(lp).all().item<bool>()) << name << " " << dtype << "\n" << lp;
      if (name != "gaussian") {  // probabilities, so <= 1 (up to the eps in log(mu + eps))
        EXPECT_TRUE((lp <= 1e-6).all().item<bool>()) << name << " " << dtype << "\n" << lp;
      }
      lp.sum().backward();
      for (const std::string& field : lik->parameters()) {
        const Tensor grad = p.field(field).grad();
        ASSERT_TRUE(grad.defined()) << name << "/" << field;
        EXPECT_TRUE(at::isfinite(grad).all().item<bool>()) << name << "/" << field << " " << dtype << "\n" << grad;
      }
    }
  }
}
