// Tokens -> gene space: the mirror of the latent-token encoder.
//
//   flatten (m*d) -> Linear(m*d, hidden) -> LayerNorm -> GELU -> Linear(hidden, 2G)
//
// The 2G outputs are split into the prediction (G) and a per-gene scale (G):
// for the DDPM objective the scale interpolates the reverse-process variance
// between beta_t and the posterior variance (learned sigma, Nichol & Dhariwal).
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

struct GeneOutput {
  Tensor value;  // (B, G)
  Tensor scale;  // (B, G)
};

class MlpDecoderImpl : public torch::nn::Module {
 public:
  MlpDecoderImpl(int64_t in_features, int64_t hidden, int64_t n_genes);
  GeneOutput forward(const Tensor& tokens);  // (B, m, d) -> 2 x (B, G)

 private:
  int64_t n_genes_;
  torch::nn::Linear in_{nullptr}, out_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(MlpDecoder);

}  // namespace exprflow
