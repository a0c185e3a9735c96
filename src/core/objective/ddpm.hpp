// DDPM objective (Ho et al. 2020) in gene space, on continuous time: the
// discrete schedule's step k is time t = (k + 1) / T, and t = 0 is the clean
// data. Predictions: eps, v (v = sqrt(ab) eps - sqrt(1-ab) x_0, Salimans & Ho
// 2022) or x0. With learn_sigma, a variational term trains the decoder's scale
// head as the reverse-process variance (learned sigma, Nichol & Dhariwal 2021).
#pragma once

#include <string>

#include "objective/noise_schedule.hpp"
#include "objective/objective.hpp"

namespace exprflow {

// x_0 implied by x_t and a predicted noise: (x_t - sqrt(1-ab) eps) / sqrt(ab).
Tensor predict_x0_from_eps(const NoiseSchedule::Coefficients& c, const Tensor& x_t, const Tensor& eps);
// The noise implied by a network output for prediction "eps", "v" or "x0".
Tensor eps_from_output(const NoiseSchedule::Coefficients& c, const Tensor& x_t, const Tensor& output,
                       const std::string& prediction);
// Mean of q(x_{t-1} | x_t, x_0).
Tensor posterior_mean(const NoiseSchedule::Coefficients& c, const Tensor& x0, const Tensor& x_t);
// log variance of the reverse step: interpolation between log beta and the
// log posterior variance, weighted by (tanh(scale) + 1) / 2 in (0, 1). tanh
// keeps it between the two bounds of the true reverse variance.
Tensor interpolate_log_variance(const Tensor& scale, const Tensor& log_beta, const Tensor& log_posterior);
Tensor learned_log_variance(const NoiseSchedule::Coefficients& c, const Tensor& scale);

class DdpmObjective final : public Objective {
 public:
  // prediction: "eps", "v" or "x0". With eps the loss weighs the clean data
  // by ~sqrt(alpha_bar) at high noise, where a cell's type is decided; v keeps it.
  // shared_time: one step per group of cells with the same covariate codes
  // (objective/flow_matching.hpp).
  DdpmObjective(NoiseSchedule schedule, std::string prediction, bool learn_sigma, double vlb_weight,
                bool shared_time = false);

  std::string name() const override { return "ddpm"; }
  // Draws the step k uniformly and the noise from `generator`.
  LossOutput loss(const Denoiser& network, const Tensor& x0, const Covariates& covariates,
                  at::Generator& generator) const override;
  // With explicit steps k (B,) int64 and noise (B, G).
  LossOutput loss_at(const Denoiser& network, const Tensor& x0, const Covariates& covariates,
                     const Tensor& k, const Tensor& noise) const;

  // sqrt(alpha_bar) at continuous t: alpha_bar of the schedule at t = (k+1)/T,
  // 1 at t = 0, log-linear in between.
  double alpha(double t) const override;
  double sigma(double t) const override;
  Prediction predict(const GeneOutput& output, const Tensor& x_t, double t) const override;
  // `steps` evenly spaced steps of the schedule (the first and the last
  // included), then t = 0.
  std::vector<double> time_grid(int64_t steps) const override;
  std::string default_sampler() const override { return "ddim"; }
  bool learned_variance() const override { return learn_sigma_; }

  // The variance is trained for the mean the sampler really uses: clipped x_0
  // predictions. Unclipped, x_0 = (x_t - ...) / sqrt(alpha_bar) explodes near
  // t = 1 and so does the KL.
  void set_x0_bounds(Tensor low, Tensor high) override {
    x0_low_ = std::move(low);
    x0_high_ = std::move(high);
  }

  // Continuous time of discrete steps k (B,) int64 -> (B,) float.
  Tensor time_of(const Tensor& k) const;
  const NoiseSchedule& schedule() const { return schedule_; }
  const std::string& prediction() const { return prediction_; }

 private:
  double alpha_bar(double t) const;
  NoiseSchedule schedule_;
  std::string prediction_;
  bool learn_sigma_;
  double vlb_weight_;
  bool shared_time_;
  Tensor x0_low_, x0_high_;
};

}  // namespace exprflow
