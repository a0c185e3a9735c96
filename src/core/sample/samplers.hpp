// Samplers: noise -> clean data, given the trained network as a function.
//
// Both samplers run on a (possibly respaced) subsequence of the training
// timesteps; the network is always called with the original timestep index.
// x_0 predictions are clipped to per-gene bounds (the range seen in training),
// the gene-space analogue of clipping images to [-1, 1].
#pragma once

#include <string>

#include "models/denoising_network.hpp"
#include "objective/noise_schedule.hpp"

namespace exprflow {

struct SamplerSettings {
  std::string method = "ddim";  // "ddim" or "ddpm" (ancestral)
  int64_t steps = 50;           // <= training timesteps
  double eta = 0.0;             // DDIM stochasticity (0 = deterministic ODE)
  std::string prediction = "eps";  // what the network outputs: "eps" or "v"
  bool learned_variance = true; // DDPM: use the network's scale head
  Tensor clip_low, clip_high;   // (G,) or undefined for no clipping
};

// Returns x_0 samples (B, G) for the given conditions (B,) int64.
Tensor sample(const Denoiser& network, const NoiseSchedule& schedule, const Tensor& condition,
              int64_t n_genes, const SamplerSettings& settings, at::Generator& generator);

// Partial noising and denoising (SDEdit-style reconstruction): clean x_0
// (B, G) is noised with q(x_t | x_0) to the last sampler timestep at or below
// noise_level * (T - 1), then run back to t = 0 with the same sampler.
// noise_level 0 returns x_0 unchanged; 1 is a full sample (x_0 forgotten).
Tensor renoise_and_denoise(const Denoiser& network, const NoiseSchedule& schedule, const Tensor& x0,
                           const Tensor& condition, double noise_level, const SamplerSettings& settings,
                           at::Generator& generator);

// Classifier-free guidance: eps = eps_null + scale * (eps_cond - eps_null).
// scale 1 is the plain conditional model; the variance head is the conditional one.
Denoiser with_guidance(Denoiser network, int64_t null_condition, double scale);

}  // namespace exprflow
