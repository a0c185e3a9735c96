#include "decode/count_quantiles.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

namespace exprflow {

namespace {

// Quantiles are taken at u <= 1 - kTail: beyond it a double cannot tell the
// CDF from 1, so an outlier count (far above its law's mean) maps to the new
// law's 1 - 1e-12 quantile, about 7 standard deviations up, not to infinity.
constexpr double kTail = 1e-12;

// The law's probability of 0 and the ratio of consecutive probabilities,
// both in logs: p(k + 1) / p(k) = (k + theta) / (k + 1) * mu / (theta + mu)
// (NB) or mu / (k + 1) (Poisson). Walking k up from 0 with these is the sum
// every CDF and quantile below makes.
class ProbabilityWalk {
 public:
  explicit ProbabilityWalk(const CountLaw& law) : law_(law), poisson_(!std::isfinite(law.theta)) {
    if (poisson_) {
      log_p_ = -law.mu;
      log_q_ = std::log(law.mu);
    } else {
      log_p_ = law.theta * std::log1p(-law.mu / (law.theta + law.mu));
      log_q_ = std::log(law.mu) - std::log(law.theta + law.mu);
    }
  }
  double probability() const { return std::exp(log_p_); }  // p(k) of the NB part
  void step() {                                              // k -> k + 1
    log_p_ += (poisson_ ? 0.0 : std::log(static_cast<double>(k_) + law_.theta)) -
              std::log(static_cast<double>(k_) + 1.0) + log_q_;
    ++k_;
  }

 private:
  const CountLaw& law_;
  bool poisson_;
  double log_p_ = 0.0, log_q_ = 0.0;
  int64_t k_ = 0;
};

void check_law(const CountLaw& law) {
  if (!(law.mu >= 0.0) || !(law.theta > 0.0) || !(law.pi >= 0.0 && law.pi <= 1.0)) {
    throw std::invalid_argument("count law needs mu >= 0, theta > 0 and pi in [0, 1]");
  }
}

// F(k - 1) and F(k) in one walk.
std::pair<double, double> cdf_step(const CountLaw& law, int64_t k) {
  check_law(law);
  if (k < 0) return {0.0, 0.0};
  if (law.mu == 0.0) return {k == 0 ? 0.0 : 1.0, 1.0};
  ProbabilityWalk walk(law);
  double below = 0.0;  // NB part's P(X < j)
  for (int64_t j = 0; j < k; ++j) {
    below += walk.probability();
    walk.step();
  }
  const double upto = below + walk.probability();
  const auto mixed = [&law](double f) { return std::min(1.0, law.pi + (1.0 - law.pi) * f); };
  return {k == 0 ? 0.0 : mixed(below), mixed(upto)};
}

}  // namespace

double count_cdf(const CountLaw& law, int64_t k) { return cdf_step(law, k).second; }

int64_t count_quantile(const CountLaw& law, double u) {
  check_law(law);
  if (!(u >= 0.0 && u <= 1.0)) throw std::invalid_argument("count_quantile: u must be in [0, 1]");
  u = std::min(u, 1.0 - kTail);
  if (law.mu == 0.0 || u <= law.pi) return 0;
  const double variance = law.mu + (std::isfinite(law.theta) ? law.mu * law.mu / law.theta : 0.0);
  const double last = std::ceil(law.mu + 40.0 * std::sqrt(variance) + 10.0);
  ProbabilityWalk walk(law);
  double cdf = 0.0;  // NB part's
  int64_t k = 0;
  for (;; ++k) {
    cdf += walk.probability();
    if (law.pi + (1.0 - law.pi) * cdf >= u || static_cast<double>(k) >= last) return k;
    walk.step();
  }
}

int64_t carry_count(const CountLaw& from, const CountLaw& to, int64_t x, double v) {
  if (x < 0) throw std::invalid_argument("carry_count: counts must be non-negative");
  if (from.mu == to.mu && from.theta == to.theta && from.pi == to.pi) return x;  // the same law: the same count
  const auto [lo, hi] = cdf_step(from, x);
  return count_quantile(to, std::clamp(lo + v * (hi - lo), 0.0, 1.0));
}

Tensor carry_counts(const Tensor& x, const Tensor& mu_from, const Tensor& theta_from, const Tensor& pi_from,
                    const Tensor& mu_to, const Tensor& theta_to, const Tensor& pi_to, at::Generator& generator) {
  if (x.dim() != 2 || mu_from.sizes() != x.sizes() || mu_to.sizes() != x.sizes()) {
    throw std::invalid_argument("carry_counts: x, mu_from and mu_to must be the same (B, G)");
  }
  const auto as_double = [&x](const Tensor& t, double absent) {  // (B, G) contiguous double on the CPU
    if (!t.defined()) return at::full(x.sizes(), absent, at::TensorOptions().dtype(at::kDouble));
    return t.detach().to(at::kCPU, at::kDouble).expand(x.sizes()).contiguous();
  };
  const double poisson = std::numeric_limits<double>::infinity();
  const Tensor counts = as_double(x, 0.0), m0 = as_double(mu_from, 0.0), m1 = as_double(mu_to, 0.0);
  const Tensor t0 = as_double(theta_from, poisson), t1 = as_double(theta_to, poisson);
  const Tensor p0 = as_double(pi_from, 0.0), p1 = as_double(pi_to, 0.0);
  const Tensor v = at::rand(x.sizes(), generator, at::TensorOptions().dtype(at::kDouble));  // (B, G)
  Tensor out = at::empty(x.sizes(), at::TensorOptions().dtype(at::kDouble));                // (B, G)
  const double *c = counts.data_ptr<double>(), *a = m0.data_ptr<double>(), *b = m1.data_ptr<double>();
  const double *ta = t0.data_ptr<double>(), *tb = t1.data_ptr<double>();
  const double *pa = p0.data_ptr<double>(), *pb = p1.data_ptr<double>(), *u = v.data_ptr<double>();
  double* o = out.data_ptr<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const auto count = static_cast<int64_t>(std::llround(c[i]));
    o[i] = static_cast<double>(carry_count({a[i], ta[i], pa[i]}, {b[i], tb[i], pb[i]}, count, u[i]));
  }
  return out;
}

}  // namespace exprflow
