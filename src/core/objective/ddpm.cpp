#include "objective/ddpm.hpp"

#include <cmath>
#include <stdexcept>

#include "data/covariate_groups.hpp"

namespace exprflow {

Tensor predict_x0_from_eps(const NoiseSchedule::Coefficients& c, const Tensor& x_t, const Tensor& eps) {
  return (x_t - c.sqrt_one_minus_alpha_bar * eps) / c.sqrt_alpha_bar;  // (B, G)
}

Tensor posterior_mean(const NoiseSchedule::Coefficients& c, const Tensor& x0, const Tensor& x_t) {
  return c.posterior_mean_x0 * x0 + c.posterior_mean_xt * x_t;  // (B, G)
}

Tensor interpolate_log_variance(const Tensor& scale, const Tensor& log_beta, const Tensor& log_posterior) {
  Tensor fraction = (at::tanh(scale) + 1) / 2;                   // (B, G)
  return fraction * log_beta + (1 - fraction) * log_posterior;  // (B, G)
}

Tensor learned_log_variance(const NoiseSchedule::Coefficients& c, const Tensor& scale) {
  return interpolate_log_variance(scale, c.log_beta, c.posterior_log_variance);
}

Tensor eps_from_output(const NoiseSchedule::Coefficients& c, const Tensor& x_t, const Tensor& output,
                       const std::string& prediction) {
  if (prediction == "eps") return output;
  if (prediction == "v") return c.sqrt_alpha_bar * output + c.sqrt_one_minus_alpha_bar * x_t;  // (B, G)
  return (x_t - c.sqrt_alpha_bar * output) / c.sqrt_one_minus_alpha_bar;                     // x0
}

DdpmObjective::DdpmObjective(NoiseSchedule schedule, std::string prediction, bool learn_sigma,
                             double vlb_weight, bool shared_time)
    : schedule_(std::move(schedule)),
      prediction_(std::move(prediction)),
      learn_sigma_(learn_sigma),
      vlb_weight_(vlb_weight),
      shared_time_(shared_time) {
  if (prediction_ != "eps" && prediction_ != "v" && prediction_ != "x0") {
    throw std::invalid_argument("unknown prediction '" + prediction_ + "'; valid: 'eps', 'v', 'x0'");
  }
}

Tensor DdpmObjective::time_of(const Tensor& k) const {
  return (k.to(at::kFloat) + 1) / static_cast<double>(schedule_.timesteps());  // (B,)
}

LossOutput DdpmObjective::loss(const Denoiser& network, const Tensor& x0, const Covariates& covariates,
                               at::Generator& generator) const {
  const int64_t B = x0.size(0);
  auto long_opts = at::TensorOptions().dtype(at::kLong);
  Tensor k = at::randint(schedule_.timesteps(), {B}, generator, long_opts).to(x0.device());  // (B,)
  if (shared_time_) k = shared_within_groups(k, covariate_groups(covariates, B));
  Tensor noise = at::normal(0.0, 1.0, x0.sizes(), generator, x0.options().device(at::kCPU))
                     .to(x0.device());  // (B, G)
  return loss_at(network, x0, covariates, k, noise);
}

LossOutput DdpmObjective::loss_at(const Denoiser& network, const Tensor& x0, const Covariates& covariates,
                                  const Tensor& k, const Tensor& noise) const {
  NoiseSchedule::Coefficients c = schedule_.at(k);
  Tensor x_t = c.sqrt_alpha_bar * x0 + c.sqrt_one_minus_alpha_bar * noise;  // (B, G)
  GeneOutput out = network(x_t, time_of(k), covariates);
  Tensor target = prediction_ == "eps" ? noise
                  : prediction_ == "v" ? c.sqrt_alpha_bar * noise - c.sqrt_one_minus_alpha_bar * x0
                                       : x0;
  Tensor mse = (out.value - target).pow(2).mean();
  if (!learn_sigma_) return {mse, {{"mse", mse.detach()}}};
  if (!out.scale.defined()) throw std::invalid_argument("learn_sigma needs a decoder with a scale head");

  // Variational bound term, with the mean's gradient stopped so that it only
  // trains the variance (the mean is trained by the MSE).
  Tensor eps_hat = eps_from_output(c, x_t, out.value.detach(), prediction_);
  Tensor x0_hat = predict_x0_from_eps(c, x_t, eps_hat);  // (B, G)
  if (x0_low_.defined()) x0_hat = at::max(at::min(x0_hat, x0_high_.unsqueeze(0)), x0_low_.unsqueeze(0));
  Tensor model_mean = posterior_mean(c, x0_hat, x_t);
  Tensor true_mean = posterior_mean(c, x0, x_t);
  Tensor model_log_var = learned_log_variance(c, out.scale);
  Tensor true_log_var = c.posterior_log_variance;
  // KL(q || p) between Gaussians, per gene. The k = 0 term (a decoder
  // likelihood for images) is left out: on continuous expression its tiny
  // variance turns into loss spikes, and sampling adds no noise at the end.
  Tensor kl = 0.5 * (-1.0 + model_log_var - true_log_var + at::exp(true_log_var - model_log_var) +
                     (true_mean - model_mean).pow(2) * at::exp(-model_log_var));  // (B, G)
  Tensor vlb = (kl * (k > 0).unsqueeze(1).to(kl.dtype())).mean();
  // The bound sums T terms; the uniform draw of k estimates it as T * term.
  Tensor total = mse + vlb_weight_ * schedule_.timesteps() * vlb;
  return {total, {{"mse", mse.detach()}, {"vlb", vlb.detach()}}};
}

double DdpmObjective::alpha_bar(double t) const {
  const int64_t T = schedule_.timesteps();
  if (t <= 0) return 1.0;
  if (t >= 1) return schedule_.alpha_bar(T - 1);
  // Points (0, log 1) and ((k + 1) / T, log alpha_bar[k]); linear in between.
  const double u = t * T - 1;  // continuous step index
  const int64_t lo = static_cast<int64_t>(std::floor(u));
  const double w = u - lo;
  const double log_lo = lo < 0 ? 0.0 : std::log(schedule_.alpha_bar(lo));
  const double log_hi = std::log(schedule_.alpha_bar(std::min(lo + 1, T - 1)));
  return std::exp((1 - w) * log_lo + w * log_hi);
}

double DdpmObjective::alpha(double t) const { return std::sqrt(alpha_bar(t)); }
double DdpmObjective::sigma(double t) const { return std::sqrt(1 - alpha_bar(t)); }

Prediction DdpmObjective::predict(const GeneOutput& output, const Tensor& x_t, double t) const {
  const double a = alpha(t), s = sigma(t);
  const Tensor& o = output.value;  // (B, G)
  if (prediction_ == "eps") return {(x_t - s * o) / a, o, output.scale};
  if (prediction_ == "v") return {a * x_t - s * o, s * x_t + a * o, output.scale};
  return {o, (x_t - a * o) / s, output.scale};
}

std::vector<double> DdpmObjective::time_grid(int64_t steps) const {
  if (steps < 1 || steps > schedule_.timesteps()) {
    throw std::invalid_argument("steps must be between 1 and the training timesteps (" +
                                std::to_string(schedule_.timesteps()) + ")");
  }
  const std::vector<int64_t> kept = timestep_subsequence(schedule_.timesteps(), steps);
  std::vector<double> grid;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    grid.push_back(static_cast<double>(*it + 1) / schedule_.timesteps());
  }
  grid.push_back(0.0);
  return grid;
}

}  // namespace exprflow
