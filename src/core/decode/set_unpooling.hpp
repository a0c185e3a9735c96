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

  // The gene tokens' MLP output is never built: its last product and the
  // read-out fold into one (AttentionLayerImpl::forward_read_out).
  GeneOutput forward(const Tensor& tokens) override;  // (B, m, D) -> (B, G) [x 2]
  // The same function, the gene tokens (B, G, D) built and read out: what
  // the tests compare forward() against.
  GeneOutput forward_reference(const Tensor& tokens);  // (B, m, D) -> (B, G) [x 2]

 private:
  Tensor queries_;  // (G, D)
  AttentionLayer unpool_{nullptr};
  GeneReadout readout_{nullptr};
};
TORCH_MODULE(SetUnpooling);

}  // namespace exprflow
