// Diffusion / flow time -> vector: sinusoidal features followed by a small MLP
// (the DiT recipe), so every block can be modulated by "how noisy".
//
// Time is continuous, t in [0, 1] (0 clean, 1 pure noise) for every
// objective. The features are taken of 1000 t: the frequencies 1 .. 1e-4 of
// the sinusoids then resolve the unit interval as finely as they resolved
// 1000 discrete DDPM steps.
#pragma once

#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

// Sinusoidal features of (possibly fractional) timesteps: (B,) -> (B, dim),
// cos half then sin half, frequencies from 1 down to 1/max_period.
Tensor sinusoidal_features(const Tensor& t, int64_t dim, double max_period = 10000.0);

class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t dim, int64_t frequency_dim = 256);
  Tensor forward(const Tensor& t);  // (B,) float in [0, 1] -> (B, dim)

  static constexpr double kTimeScale = 1000.0;

 private:
  int64_t frequency_dim_;
  Linear in_{nullptr}, out_{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace exprflow
