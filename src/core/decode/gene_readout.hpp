// Gene tokens back to genes: each gene's own token read out by one shared
// linear map (zero-initialised) plus a per-gene bias. For tokenizers with one
// token per gene (GRN attention), where a flattening decoder would need
// G x G x D weights.
#pragma once

#include "decode/gene_decoder.hpp"

namespace exprflow {

class GeneReadoutImpl : public GeneDecoderImpl {
 public:
  GeneReadoutImpl(int64_t n_genes, int64_t token_dim, int64_t heads = 1);
  GeneOutput forward(const Tensor& tokens) override;  // (B, G, D) -> (B, G) [x 2]

 private:
  int64_t n_genes_, heads_;
  torch::nn::Linear out_{nullptr};  // D -> heads, zero-initialised
  Tensor bias_;                     // (heads * G,)
};
TORCH_MODULE(GeneReadout);

}  // namespace exprflow
