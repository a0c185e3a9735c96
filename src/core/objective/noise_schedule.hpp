// DDPM noise schedules: beta_t for t = 0..T-1 and the quantities derived from
// it that the loss and the samplers need (computed once, in double precision).
//
// A schedule can be respaced onto a subsequence of its timesteps: the
// respaced betas keep alpha_bar at the kept steps, which is what lets DDPM
// and DDIM sample in fewer steps than the model was trained with.
#pragma once

#include <string>
#include <vector>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class NoiseSchedule {
 public:
  // kind: "linear" (Ho et al. 2020, beta 1e-4 .. 0.02 rescaled to T steps)
  //       "cosine" (Nichol & Dhariwal 2021, s = 0.008, beta clipped at 0.999)
  NoiseSchedule(const std::string& kind, int64_t timesteps);
  // From explicit betas (used by respaced()).
  explicit NoiseSchedule(std::vector<double> betas);

  // The schedule restricted to `kept` (increasing original timesteps).
  NoiseSchedule respaced(const std::vector<int64_t>& kept) const;

  int64_t timesteps() const { return static_cast<int64_t>(beta_.size()); }
  const std::string& kind() const { return kind_; }

  double beta(int64_t t) const { return beta_[t]; }
  double alpha_bar(int64_t t) const { return alpha_bar_[t]; }
  double alpha_bar_prev(int64_t t) const { return t == 0 ? 1.0 : alpha_bar_[t - 1]; }
  double posterior_variance(int64_t t) const { return posterior_variance_[t]; }
  const std::vector<double>& betas() const { return beta_; }
  const std::vector<double>& alpha_bars() const { return alpha_bar_; }

  // Per-sample coefficients for timesteps t (B,) int64, as (B, 1) float
  // tensors on t's device, ready to broadcast over genes.
  struct Coefficients {
    Tensor sqrt_alpha_bar, sqrt_one_minus_alpha_bar;
    Tensor posterior_mean_x0, posterior_mean_xt;  // q(x_{t-1}|x_t,x_0) mean coefficients
    Tensor log_beta, posterior_log_variance;      // the latter clipped at t = 0
  };
  Coefficients at(const Tensor& t) const;

 private:
  void derive();
  std::string kind_;
  std::vector<double> beta_, alpha_bar_, posterior_variance_;
  Tensor table_;  // (T, 6) double, columns in Coefficients order
};

// n timesteps of 0..T-1, evenly spaced, including 0 and T-1 (n = 1 gives {T-1}).
std::vector<int64_t> timestep_subsequence(int64_t timesteps, int64_t n);

}  // namespace exprflow
