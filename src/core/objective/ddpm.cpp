#include "objective/ddpm.hpp"

#include <stdexcept>

namespace exprflow {

Tensor predict_x0_from_eps(const NoiseSchedule::Coefficients& c, const Tensor& x_t, const Tensor& eps) {
  return (x_t - c.sqrt_one_minus_alpha_bar * eps) / c.sqrt_alpha_bar;  // (B, G)
}

Tensor posterior_mean(const NoiseSchedule::Coefficients& c, const Tensor& x0, const Tensor& x_t) {
  return c.posterior_mean_x0 * x0 + c.posterior_mean_xt * x_t;  // (B, G)
}

Tensor learned_log_variance(const NoiseSchedule::Coefficients& c, const Tensor& scale) {
  // tanh keeps the variance between the posterior variance and beta_t (the
  // two bounds of the true reverse variance); a raw output overshoots them.
  Tensor fraction = (at::tanh(scale) + 1) / 2;                                      // (B, G)
  return fraction * c.log_beta + (1 - fraction) * c.posterior_log_variance;        // (B, G)
}

Tensor eps_from_output(const NoiseSchedule::Coefficients& c, const Tensor& x_t, const Tensor& output,
                       const std::string& prediction) {
  if (prediction == "eps") return output;
  return c.sqrt_alpha_bar * output + c.sqrt_one_minus_alpha_bar * x_t;  // (B, G)
}

DdpmObjective::DdpmObjective(NoiseSchedule schedule, std::string prediction, bool learn_sigma,
                             double vlb_weight)
    : schedule_(std::move(schedule)),
      prediction_(std::move(prediction)),
      learn_sigma_(learn_sigma),
      vlb_weight_(vlb_weight) {
  if (prediction_ != "eps" && prediction_ != "v") {
    throw std::invalid_argument("unknown prediction '" + prediction_ + "'; valid: 'eps', 'v'");
  }
}

DdpmObjective::Loss DdpmObjective::loss(const Denoiser& network, const Tensor& x0,
                                        const Tensor& condition, at::Generator& generator) const {
  const int64_t B = x0.size(0);
  auto long_opts = at::TensorOptions().dtype(at::kLong);
  Tensor t = at::randint(schedule_.timesteps(), {B}, generator, long_opts).to(x0.device());  // (B,)
  Tensor noise = at::normal(0.0, 1.0, x0.sizes(), generator, x0.options().device(at::kCPU))
                     .to(x0.device());  // (B, G)
  return loss_at(network, x0, condition, t, noise);
}

DdpmObjective::Loss DdpmObjective::loss_at(const Denoiser& network, const Tensor& x0,
                                           const Tensor& condition, const Tensor& t,
                                           const Tensor& noise) const {
  NoiseSchedule::Coefficients c = schedule_.at(t);
  Tensor x_t = c.sqrt_alpha_bar * x0 + c.sqrt_one_minus_alpha_bar * noise;  // (B, G)
  GeneOutput out = network(x_t, t, condition);
  Tensor target = prediction_ == "eps" ? noise
                                        : c.sqrt_alpha_bar * noise - c.sqrt_one_minus_alpha_bar * x0;
  Tensor mse = (out.value - target).pow(2).mean();
  if (!learn_sigma_) return {mse, mse.detach()};

  // Variational bound term, with the mean's gradient stopped so that it only
  // trains the variance (the mean is trained by the MSE).
  Tensor eps_hat = eps_from_output(c, x_t, out.value.detach(), prediction_);
  Tensor x0_hat = predict_x0_from_eps(c, x_t, eps_hat);  // (B, G)
  if (x0_low_.defined()) x0_hat = at::max(at::min(x0_hat, x0_high_.unsqueeze(0)), x0_low_.unsqueeze(0));
  Tensor model_mean = posterior_mean(c, x0_hat, x_t);
  Tensor true_mean = posterior_mean(c, x0, x_t);
  Tensor model_log_var = learned_log_variance(c, out.scale);
  Tensor true_log_var = c.posterior_log_variance;
  // KL(q || p) between Gaussians, per gene. The t = 0 term (a decoder
  // likelihood for images) is left out: on continuous expression its tiny
  // variance turns into loss spikes, and sampling adds no noise at t = 0.
  Tensor kl = 0.5 * (-1.0 + model_log_var - true_log_var + at::exp(true_log_var - model_log_var) +
                     (true_mean - model_mean).pow(2) * at::exp(-model_log_var));  // (B, G)
  Tensor vlb = (kl * (t > 0).unsqueeze(1).to(kl.dtype())).mean();
  // The bound sums T terms; the uniform draw of t estimates it as T * term.
  Tensor total = mse + vlb_weight_ * schedule_.timesteps() * vlb;
  return {total, mse.detach()};
}

}  // namespace exprflow
