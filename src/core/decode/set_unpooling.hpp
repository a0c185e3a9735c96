// Set tokens back to genes: each gene's learned query attends to the m
// tokens (one cross-attention layer with its MLP), and the resulting gene
// tokens are read out by decode/gene_readout.hpp. O(G m) per cell.
#pragma once

#include "connectivity/attention_layer.hpp"
#include "decode/gene_decoder.hpp"
#include "decode/gene_readout.hpp"

namespace exprflow {

class SetUnpoolingImpl : public GeneDecoderImpl {
 public:
  SetUnpoolingImpl(int64_t n_genes, int64_t token_dim, int64_t pool_heads, int64_t heads);

  GeneOutput forward(const Tensor& tokens) override;  // (B, m, D) -> (B, G) [x 2]

 private:
  Tensor queries_;  // (G, D)
  AttentionLayer unpool_{nullptr};
  GeneReadout readout_{nullptr};
};
TORCH_MODULE(SetUnpooling);

}  // namespace exprflow
