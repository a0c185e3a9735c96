// Diffusion timestep -> vector: sinusoidal features followed by a small MLP
// (the DiT recipe), so every block can be modulated by "how noisy".
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// Sinusoidal features of (possibly fractional) timesteps: (B,) -> (B, dim),
// cos half then sin half, frequencies from 1 down to 1/max_period.
Tensor sinusoidal_features(const Tensor& t, int64_t dim, double max_period = 10000.0);

class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t dim, int64_t frequency_dim = 256);
  Tensor forward(const Tensor& t);  // (B,) -> (B, dim)

 private:
  int64_t frequency_dim_;
  torch::nn::Linear in_{nullptr}, out_{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace exprflow
