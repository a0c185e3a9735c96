// Set tokens back to genes: each gene's learned query attends to the m
// tokens (one cross-attention layer with its MLP), and a shared linear map
// (zero-initialised) plus a per-gene bias reads the result out to the gene's
// value, as decode/gene_readout.hpp does for gene tokens. O(G m) per cell.
#pragma once

#include "connectivity/attention_layer.hpp"
#include "decode/gene_decoder.hpp"

namespace exprflow {

class SetUnpoolingImpl : public GeneDecoderImpl {
 public:
  SetUnpoolingImpl(int64_t n_genes, int64_t token_dim, int64_t pool_heads, int64_t heads);

  GeneOutput forward(const Tensor& tokens) override;  // (B, m, D) -> (B, G) [x 2]

 private:
  int64_t n_genes_, heads_;
  Tensor queries_;  // (G, D)
  AttentionLayer unpool_{nullptr};
  torch::nn::Linear out_{nullptr};  // D -> heads, shared by the genes
  Tensor bias_;                     // (heads * G)
};
TORCH_MODULE(SetUnpooling);

}  // namespace exprflow
