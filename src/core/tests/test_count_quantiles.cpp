// Decode stage: counts carried between laws at their quantile
// (decode/count_quantiles.hpp) and the likelihoods' carry().
//
// The CDF against sums of probabilities computed with std::lgamma (the plain
// reference); quantiles as the CDF's inverse; a law carried to itself gives
// the same counts; carried draws follow the new law (moments) and keep their
// order; the gaussian's standard score; errors.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "decode/count_quantiles.hpp"
#include "decode/likelihood.hpp"

using namespace exprflow;

namespace {

constexpr double kPoisson = std::numeric_limits<double>::infinity();

// P(X = k) of a (zero-inflated) NB or Poisson, each term by lgamma: no recurrences.
double reference_probability(const CountLaw& law, int64_t k) {
  const double x = static_cast<double>(k);
  double log_p;
  if (std::isinf(law.theta)) {
    log_p = x * std::log(law.mu) - law.mu - std::lgamma(x + 1);
  } else {
    log_p = std::lgamma(x + law.theta) - std::lgamma(law.theta) - std::lgamma(x + 1) +
            law.theta * std::log(law.theta / (law.theta + law.mu)) + x * std::log(law.mu / (law.theta + law.mu));
  }
  return (1 - law.pi) * std::exp(log_p) + (k == 0 ? law.pi : 0.0);
}

double reference_cdf(const CountLaw& law, int64_t k) {
  double sum = 0;
  for (int64_t j = 0; j <= k; ++j) sum += reference_probability(law, j);
  return sum;
}

const std::vector<CountLaw>& laws() {
  static const std::vector<CountLaw> all = {
      {0.3, 2.0, 0.0}, {4.0, 0.5, 0.0}, {25.0, 10.0, 0.0}, {3.0, kPoisson, 0.0},
      {6.0, 1.5, 0.3}, {900.0, 20.0, 0.0}, {800.0, kPoisson, 0.0},  // exp(-800) underflows: the walk is in logs
  };
  return all;
}

}  // namespace

TEST(CountQuantiles, CdfMatchesSummedProbabilities) {
  for (const CountLaw& law : laws()) {
    for (int64_t k : {0, 1, 2, 5, 17, 60, 850, 1000}) {
      EXPECT_NEAR(count_cdf(law, k), reference_cdf(law, k), 1e-9) << "mu " << law.mu << " k " << k;
    }
    EXPECT_EQ(count_cdf(law, -1), 0.0);
  }
  EXPECT_EQ(count_cdf({0.0, 2.0, 0.0}, 0), 1.0);  // no expected counts: all mass at 0
}

TEST(CountQuantiles, QuantileIsTheSmallestCountWhoseCdfReachesU) {
  for (const CountLaw& law : laws()) {
    for (double u : {0.0, 0.01, 0.2, 0.5, 0.77, 0.99, 0.999999}) {
      const int64_t k = count_quantile(law, u);
      EXPECT_GE(reference_cdf(law, k), u - 1e-9) << "mu " << law.mu << " u " << u;
      if (k > 0) EXPECT_LT(reference_cdf(law, k - 1), u + 1e-9) << "mu " << law.mu << " u " << u;
    }
  }
  EXPECT_EQ(count_quantile({5.0, 1.0, 0.4}, 0.39), 0);  // below the structural zeros' mass
  // The far tail stops at a finite count.
  EXPECT_LT(count_quantile({2.0, 1.0, 0.0}, 1.0), 200);
}

TEST(CountQuantiles, CarryingToTheSameLawKeepsEveryCount) {
  for (const CountLaw& law : laws()) {
    for (int64_t x : {0, 1, 3, 40, 700}) {
      for (double v : {0.0, 0.3, 0.999}) EXPECT_EQ(carry_count(law, law, x, v), x);
    }
  }
  // Laws that differ only by rounding: counts in the body stay.
  const CountLaw a{4.0, 2.0, 0.0}, b{4.0 + 1e-12, 2.0, 0.0};
  for (int64_t x = 0; x < 30; ++x) EXPECT_EQ(carry_count(a, b, x, 0.5), x);
}

TEST(CountQuantiles, CarriedDrawsFollowTheNewLawAndKeepTheirOrder) {
  at::Generator generator = at::detail::createCPUGenerator(7);
  const int64_t n = 40000;
  const auto nb = make_likelihood("nb");
  LikelihoodParams from, to;
  from.rate = at::full({n, 1}, 0.002, at::TensorOptions().dtype(at::kDouble));  // mu 2 at library 1000
  from.log_theta = at::full({1}, std::log(0.8), at::TensorOptions().dtype(at::kDouble));
  to.rate = at::full({n, 1}, 0.015, at::TensorOptions().dtype(at::kDouble));    // mu 15
  to.log_theta = at::full({1}, std::log(3.0), at::TensorOptions().dtype(at::kDouble));
  const Tensor library = at::full({n}, 1000.0, at::TensorOptions().dtype(at::kDouble));
  const Tensor x = nb->sample(from, library, generator);                        // (n, 1)
  const Tensor carried = nb->carry(from, to, x, library, generator);            // (n, 1)
  const double mean = carried.mean().item<double>(), variance = carried.var().item<double>();
  EXPECT_NEAR(mean, 15.0, 0.3);
  EXPECT_NEAR(variance, 15.0 + 15.0 * 15.0 / 3.0, 4.0);  // 90
  // A larger observed count never lands lower: every carried value of a
  // larger x is at least the largest carried value of a smaller x (ties in
  // x are spread over their CDF step by v).
  const Tensor order = at::argsort(x.squeeze(1));
  const Tensor xs = x.squeeze(1).index_select(0, order).contiguous();
  const Tensor sorted = carried.squeeze(1).index_select(0, order).contiguous();
  const auto* xv = xs.data_ptr<double>();
  const auto* cv = sorted.data_ptr<double>();
  double max_below = -1;
  int64_t i = 0;
  while (i < n) {
    int64_t j = i;
    double lo = cv[i], hi = cv[i];
    while (j < n && xv[j] == xv[i]) {
      lo = std::min(lo, cv[j]);
      hi = std::max(hi, cv[j]);
      ++j;
    }
    EXPECT_GE(lo, max_below) << "x = " << xv[i];
    max_below = hi;
    i = j;
  }
}

TEST(CountQuantiles, EveryCountLikelihoodCarriesItsOwnLaw) {
  at::Generator generator = at::detail::createCPUGenerator(3);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  const Tensor x = at::tensor(std::vector<double>{0, 3, 9, 1, 0, 14}, opts).reshape({2, 3});
  const Tensor library = at::tensor(std::vector<double>{100.0, 200.0}, opts);
  LikelihoodParams p;
  p.rate = at::tensor(std::vector<double>{0.01, 0.03, 0.05, 0.02, 0.01, 0.06}, opts).reshape({2, 3});
  p.log_theta = at::tensor(std::vector<double>{0.1, -0.5, 1.0}, opts);
  p.zero_logits = at::full({2, 3}, -1.0, opts);
  for (const std::string name : {"poisson", "nb", "zinb"}) {
    const Tensor same = make_likelihood(name)->carry(p, p, x, library, generator);
    EXPECT_TRUE(at::equal(same, x)) << name;
  }
  // NB laws with every mean doubled (same dispersion) lie above the old
  // ones: over 2,000 copies of cell 0, no carried count falls, and some rise.
  const Tensor many = at::zeros({2000, 3}, opts) + x.slice(0, 0, 1);  // (2000, 3)
  LikelihoodParams before = p, doubled = p;
  before.rate = p.rate.slice(0, 0, 1).expand({2000, 3}).contiguous();
  doubled.rate = before.rate * 2;
  const Tensor lib = at::full({2000}, 100.0, opts);
  const Tensor raised = make_likelihood("nb")->carry(before, doubled, many, lib, generator);
  EXPECT_TRUE((raised >= many).all().item<bool>());
  EXPECT_GT(raised.sum().item<double>(), many.sum().item<double>());
}

TEST(CountQuantiles, GaussianKeepsTheStandardScore) {
  at::Generator generator = at::detail::createCPUGenerator(1);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  LikelihoodParams from, to;
  from.rate = at::tensor(std::vector<double>{1.0, 2.0}, opts).reshape({1, 2});
  from.log_scale = at::zeros({2}, opts);
  to.rate = at::tensor(std::vector<double>{3.0, 0.0}, opts).reshape({1, 2});
  to.log_scale = at::full({2}, std::log(2.0), opts);
  const Tensor x = at::tensor(std::vector<double>{1.5, 1.0}, opts).reshape({1, 2});
  const Tensor out = make_likelihood("gaussian")->carry(from, to, x, Tensor(), generator);
  EXPECT_NEAR(out[0][0].item<double>(), 4.0, 1e-12);   // +0.5 sd -> 3 + 0.5 * 2
  EXPECT_NEAR(out[0][1].item<double>(), -2.0, 1e-12);  // -1 sd -> 0 - 1 * 2
}

TEST(CountQuantiles, BadInputsAreErrors) {
  EXPECT_THROW(count_cdf({-1.0, 1.0, 0.0}, 2), std::invalid_argument);
  EXPECT_THROW(count_quantile({1.0, 1.0, 0.0}, 1.5), std::invalid_argument);
  EXPECT_THROW(carry_count({1.0, 1.0, 0.0}, {2.0, 1.0, 0.0}, -1, 0.5), std::invalid_argument);
  at::Generator generator = at::detail::createCPUGenerator(1);
  const Tensor x = at::zeros({2, 3}, at::TensorOptions().dtype(at::kDouble));
  EXPECT_THROW(carry_counts(x, at::zeros({2, 2}), {}, {}, at::zeros({2, 3}), {}, {}, generator),
               std::invalid_argument);
}
