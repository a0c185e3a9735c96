// Samplers: noise -> cells, given the trained network as a function.
//
// A sampler walks down a time grid from t = 1 (noise) to t = 0 (clean) along
// the objective's Gaussian path x_t = alpha(t) x_0 + sigma(t) eps, using only
// the objective's predictions of x_0 and eps; so every sampler works with
// every objective:
//   "euler"  first-order ODE step. On these paths it equals deterministic DDIM
//            (DDIM is Euler's method on the probability-flow ODE), and for
//            rectified flow it is x_s = x_t + (s - t) v.
//   "heun"   second-order ODE step (Euler predictor, trapezoidal corrector;
//            the last step, to t = 0, is Euler).
//   "ddim"   DDIM with stochasticity eta (eta = 0: "euler").
//   "ddpm"   ancestral sampling from the Gaussian posterior q(x_s | x_t, x_0),
//            with the network's learned variance where the objective has one.
// x_0 predictions are clipped to per-gene bounds (the range seen in
// training), the gene-space analogue of clipping images to [-1, 1].
#pragma once

#include <string>
#include <vector>

#include "objective/objective.hpp"

#include "exprflow/options.hpp"

namespace exprflow {

struct SamplerSettings {
  std::string method = "euler";
  int64_t steps = 50;
  double eta = 0.0;            // "ddim" only
  Tensor clip_low, clip_high;  // (G,) or undefined for no clipping

  // From sample options (method, steps, eta, clip): method "default" is the
  // objective's own; the box is used when `clip` is set and it is defined.
  // Bad values are std::invalid_argument naming them.
  static SamplerSettings from(const Options& options, const Objective& objective, const Tensor& low,
                              const Tensor& high);
};

std::vector<std::string> sampler_names();  // {"ddim", "ddpm", "euler", "heun"}
void check_sampler(const std::string& method);  // throws listing the valid ones

// Walks x (B, G) at time grid[from] down to grid.back() (= 0).
Tensor run_sampler(const Denoiser& network, const Objective& objective, Tensor x, const std::vector<double>& grid,
                   size_t from, const Covariates& covariates, const SamplerSettings& settings,
                   at::Generator& generator);

// n_cells new cells (B, G) for the given covariates (B,) from N(0, I) noise.
Tensor sample(const Denoiser& network, const Objective& objective, const Covariates& covariates, int64_t n_cells,
              int64_t n_genes, const at::Device& device, const SamplerSettings& settings,
              at::Generator& generator);

// Partial noising and denoising (SDEdit-style reconstruction): clean x_0
// (B, G) is noised to the largest grid time at or below noise_level, then
// walked back to t = 0. noise_level 0 returns x_0; 1 is a full sample.
Tensor renoise_and_denoise(const Denoiser& network, const Objective& objective, const Tensor& x0,
                           const Covariates& covariates, double noise_level, const SamplerSettings& settings,
                           at::Generator& generator);

// Deterministic inversion (DDIM inversion; for rectified flow, the ODE run
// backwards): clean x_0 (B, G) walked UP the sampler's time grid, from t = 0
// to its noisiest time, with "euler" or "heun" steps (deterministic "ddim" is
// "euler") under `covariates`. Sampling the result back down with the same
// settings, network and covariates returns x_0 up to the discretisation
// error. Other methods are std::invalid_argument.
Tensor invert_to_noise(const Denoiser& network, const Objective& objective, const Tensor& x0,
                       const Covariates& covariates, const SamplerSettings& settings);

// Counterfactual cells: x_0 (B, G) inverted to noise with a deterministic
// sampler and integrated back (same settings both ways), so that what the
// network does not explain by the covariates (the cell's own noise) is kept.
// `mode` says under which covariates (a covariate "changes" for a cell when
// its code in `to` differs from the one in `from`):
//   "joint"     inverted under `from`, integrated under `to`;
//   "marginal"  only the changed covariates both ways, the kept ones null:
//               the cell moves as the population of every level of the kept
//               covariates does (what a combination never trained on, e.g.
//               a held-out cell type's stimulation, needs);
//   "contrast"  inverted under `from`, integrated along the cell's own flow
//               plus the marginal contrast of the changed covariates:
//               out(x | from) + out(x | changed in to) - out(x | changed in
//               from), three branches in one call.
// Unknown modes are std::invalid_argument.
Tensor transfer_cells(const Denoiser& network, const Objective& objective, const Tensor& x0, const Covariates& from,
                      const Covariates& to, const SamplerSettings& settings, const std::string& mode = "joint");

// The transfer modes, {"contrast", "joint", "marginal"}.
std::vector<std::string> transfer_modes();
// std::invalid_argument unless `mode` is one of transfer_modes().
void check_transfer_mode(const std::string& mode);

// Per cell, the covariates whose codes differ between `from` and `to`; the
// others set to -1 on both sides. Returns {from, to} so masked.
std::pair<Covariates, Covariates> changed_covariates(const Covariates& from, const Covariates& to);

// Classifier-free guidance on the raw output (noise, velocity and clean-data
// predictions are all linear in it): out_null + scale * (out_cond - out_null),
// the null branch with every covariate set to -1. The scale head is the
// conditional one. Scale 1 is the plain conditional model.
Denoiser with_guidance(Denoiser network, double scale);

}  // namespace exprflow
