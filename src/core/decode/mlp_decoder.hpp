// Tokens -> gene space: the mirror of the latent-token encoder.
//
//   flatten (T*D) -> Linear(T*D, hidden) -> LayerNorm -> GELU -> Linear(hidden, heads * G)
//
// heads = 2 adds the per-gene scale head (DDPM's learned variance).
#pragma once

#include "decode/gene_decoder.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class MlpDecoderImpl : public GeneDecoderImpl {
 public:
  MlpDecoderImpl(int64_t in_features, int64_t hidden, int64_t n_genes, int64_t heads = 2);
  GeneOutput forward(const Tensor& tokens) override;  // (B, T, D) -> (B, G) [x 2]

 private:
  int64_t n_genes_, heads_;
  Linear in_{nullptr}, out_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(MlpDecoder);

}  // namespace exprflow
