// The contract between a network and the objectives / samplers that use it.
//
// A network maps noisy expression, a timestep and a condition to a gene-space
// output (what that output means -- noise, velocity, clean data -- is the
// objective's business, not the network's). Samplers receive the network as a
// plain function (Denoiser), so they never depend on any architecture.
#pragma once

#include <functional>
#include <stdexcept>

#include "decode/mlp_decoder.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class DenoisingNetworkImpl : public torch::nn::Module {
 public:
  // x_t: (B, G) float; t: (B,) int64 timesteps; condition: (B,) int64 levels
  // (null index = unconditional). Returns value and scale, each (B, G).
  virtual GeneOutput forward(const Tensor& x_t, const Tensor& t, const Tensor& condition) = 0;

  // One vector per cell of clean (scaled) expression: (B, G) -> (B, dims).
  virtual Tensor embed(const Tensor& x) = 0;

  virtual int64_t null_condition() const = 0;

  // Token models expose their encoder for interpretation; others throw.
  // Content tokens of clean (scaled) expression: (B, G) -> (B, m, d).
  virtual Tensor tokens(const Tensor& x) {
    throw std::invalid_argument("this architecture has no tokens to interpret");
  }
  // The encoder's linear path per token: (m, G), unsigned.
  virtual Tensor token_weight_loadings() {
    throw std::invalid_argument("this architecture has no tokens to interpret");
  }
};

using Denoiser = std::function<GeneOutput(const Tensor& x_t, const Tensor& t, const Tensor& condition)>;

}  // namespace exprflow
