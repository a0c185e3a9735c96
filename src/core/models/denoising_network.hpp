// The contract between a network and the objectives / samplers that use it.
//
// A network maps noisy expression x_t, continuous time t in [0, 1] (0 clean,
// 1 noise) and the covariates to a gene-space output; what that output means
// (noise, velocity, clean data) is the objective's business, not the
// network's. Objectives and samplers receive the network as a plain function
// (Denoiser), so they never depend on any architecture.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/cell_batch.hpp"
#include "decode/gene_decoder.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class DenoisingNetworkImpl : public torch::nn::Module {
 public:
  // x_t: (B, G) float; t: (B,) float in [0, 1]; covariates: (B,) int64 codes
  // by name (-1 = null). Returns value [and scale], each (B, G).
  virtual GeneOutput forward(const Tensor& x_t, const Tensor& t, const Covariates& covariates) = 0;

  // One vector per cell of clean (scaled) expression: (B, G) -> (B, dims).
  virtual Tensor embed(const Tensor& x) = 0;

  // Token models expose their tokenizer for interpretation; others throw.
  // Content tokens of clean (scaled) expression: (B, G) -> (B, m, d).
  virtual Tensor tokens(const Tensor& x) {
    throw std::invalid_argument("this architecture has no tokens to interpret");
  }
  // Names of the tokens where they have them (gene sets); empty otherwise.
  virtual std::vector<std::string> token_names() const { return {}; }
  // The tokenizer's linear path per token: (m, G), unsigned.
  virtual Tensor token_weight_loadings() {
    throw std::invalid_argument("this architecture has no tokens to interpret");
  }
};

using Denoiser = std::function<GeneOutput(const Tensor& x_t, const Tensor& t, const Covariates& covariates)>;

}  // namespace exprflow
