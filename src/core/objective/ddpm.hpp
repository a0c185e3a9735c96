// DDPM objective in gene space with eps-prediction (Ho et al. 2020), plus the
// variational term that trains the decoder's scale head as the reverse-process
// variance (learned sigma, Nichol & Dhariwal 2021).
#pragma once

#include <string>

#include "models/denoising_network.hpp"
#include "objective/noise_schedule.hpp"

namespace exprflow {

// x_0 implied by x_t and a predicted noise: (x_t - sqrt(1-ab) eps) / sqrt(ab).
Tensor predict_x0_from_eps(const NoiseSchedule::Coefficients& c, const Tensor& x_t, const Tensor& eps);
// The noise implied by a network output: the output itself for
// eps-prediction; for v-prediction (v = sqrt(ab) eps - sqrt(1-ab) x_0, Salimans
// & Ho 2022) eps = sqrt(ab) v + sqrt(1-ab) x_t.
Tensor eps_from_output(const NoiseSchedule::Coefficients& c, const Tensor& x_t, const Tensor& output,
                       const std::string& prediction);
// Mean of q(x_{t-1} | x_t, x_0).
Tensor posterior_mean(const NoiseSchedule::Coefficients& c, const Tensor& x0, const Tensor& x_t);
// log variance of p(x_{t-1} | x_t): interpolation between log beta_t and the
// clipped log posterior variance, weighted by (tanh(scale) + 1) / 2 in (0, 1).
Tensor learned_log_variance(const NoiseSchedule::Coefficients& c, const Tensor& scale);

class DdpmObjective {
 public:
  // prediction: "eps" or "v". With eps the loss weighs the clean data by
  // ~sqrt(alpha_bar) at high noise, where a cell's type is decided; v keeps it.
  DdpmObjective(NoiseSchedule schedule, std::string prediction, bool learn_sigma, double vlb_weight);

  struct Loss {
    Tensor total;  // scalar, what the optimiser minimises
    Tensor mse;    // scalar, the eps-prediction error alone
  };

  // Draws t uniformly and the noise from `generator`.
  Loss loss(const Denoiser& network, const Tensor& x0, const Tensor& condition,
            at::Generator& generator) const;
  // With explicit timesteps (B,) and noise (B, G): a reproducible validation loss.
  Loss loss_at(const Denoiser& network, const Tensor& x0, const Tensor& condition,
               const Tensor& t, const Tensor& noise) const;

  // Per-gene box (G,) for x_0 predictions, as the samplers clip them. The
  // variance is then trained for the mean the sampler really uses; unclipped,
  // x_0 = (x_t - ...) / sqrt(alpha_bar) explodes near t = T-1 and so does the KL.
  void set_x0_bounds(Tensor low, Tensor high) {
    x0_low_ = std::move(low);
    x0_high_ = std::move(high);
  }

  const NoiseSchedule& schedule() const { return schedule_; }
  bool learn_sigma() const { return learn_sigma_; }
  const std::string& prediction() const { return prediction_; }

 private:
  NoiseSchedule schedule_;
  std::string prediction_;
  bool learn_sigma_;
  double vlb_weight_;
  Tensor x0_low_, x0_high_;
};

}  // namespace exprflow
