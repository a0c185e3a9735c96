#include "objective/noise_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

namespace exprflow {

NoiseSchedule::NoiseSchedule(const std::string& kind, int64_t timesteps) : kind_(kind) {
  if (timesteps < 2) throw std::invalid_argument("timesteps must be at least 2");
  beta_.resize(timesteps);
  if (kind == "linear") {
    const double scale = 1000.0 / timesteps;
    const double lo = scale * 1e-4, hi = scale * 0.02;
    for (int64_t t = 0; t < timesteps; ++t) beta_[t] = lo + (hi - lo) * t / (timesteps - 1);
  } else if (kind == "cosine") {
    const double s = 0.008;
    auto f = [&](double t) {
      const double v = std::cos((t / timesteps + s) / (1 + s) * M_PI / 2);
      return v * v;
    };
    for (int64_t t = 0; t < timesteps; ++t) beta_[t] = std::min(1 - f(t + 1) / f(t), 0.999);
  } else {
    throw std::invalid_argument("unknown noise schedule '" + kind + "'; valid: 'linear', 'cosine'");
  }
  derive();
}

NoiseSchedule::NoiseSchedule(std::vector<double> betas) : kind_("respaced"), beta_(std::move(betas)) {
  if (beta_.size() < 1) throw std::invalid_argument("a schedule needs at least one step");
  derive();
}

void NoiseSchedule::derive() {
  const int64_t T = timesteps();
  alpha_bar_.resize(T);
  posterior_variance_.resize(T);
  double product = 1.0;
  for (int64_t t = 0; t < T; ++t) alpha_bar_[t] = (product *= 1 - beta_[t]);
  for (int64_t t = 0; t < T; ++t) {
    posterior_variance_[t] = beta_[t] * (1 - alpha_bar_prev(t)) / (1 - alpha_bar_[t]);
  }
  table_ = at::empty({T, 6}, at::TensorOptions().dtype(at::kDouble));
  auto a = table_.accessor<double, 2>();
  for (int64_t t = 0; t < T; ++t) {
    const double ab = alpha_bar_[t], ab_prev = alpha_bar_prev(t);
    a[t][0] = std::sqrt(ab);
    a[t][1] = std::sqrt(1 - ab);
    a[t][2] = beta_[t] * std::sqrt(ab_prev) / (1 - ab);
    a[t][3] = (1 - ab_prev) * std::sqrt(1 - beta_[t]) / (1 - ab);
    a[t][4] = std::log(beta_[t]);
    // The true posterior variance at t = 0 is 0; use t = 1's, as DDPM does.
    a[t][5] = std::log(T > 1 && t == 0 ? posterior_variance_[1] : posterior_variance_[t]);
  }
}

NoiseSchedule NoiseSchedule::respaced(const std::vector<int64_t>& kept) const {
  std::vector<double> betas;
  double last_alpha_bar = 1.0;
  for (int64_t t : kept) {
    if (t < 0 || t >= timesteps()) throw std::out_of_range("respaced timestep outside the schedule");
    betas.push_back(1 - alpha_bar_[t] / last_alpha_bar);
    last_alpha_bar = alpha_bar_[t];
  }
  return NoiseSchedule(std::move(betas));
}

NoiseSchedule::Coefficients NoiseSchedule::at(const Tensor& t) const {
  Tensor rows = table_.index_select(0, t.to(at::kCPU)).to(at::kFloat).to(t.device());  // (B, 6)
  std::vector<Tensor> c = rows.split(1, 1);                                           // 6 x (B, 1)
  return {c[0], c[1], c[2], c[3], c[4], c[5]};
}

std::vector<int64_t> timestep_subsequence(int64_t timesteps, int64_t n) {
  if (n < 1) throw std::invalid_argument("the number of sampling steps must be at least 1");
  if (n >= timesteps) n = timesteps;
  std::set<int64_t> kept;
  for (int64_t i = 0; i < n; ++i) {
    kept.insert(n == 1 ? timesteps - 1
                       : static_cast<int64_t>(std::llround(double(i) * (timesteps - 1) / (n - 1))));
  }
  return std::vector<int64_t>(kept.begin(), kept.end());
}

}  // namespace exprflow
