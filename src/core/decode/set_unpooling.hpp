// Set tokens back to genes: each gene's learned query attends to the m
// tokens (one cross-attention layer with its MLP), and the resulting gene
// tokens are read out by decode/gene_readout.hpp. O(G m) per cell.
//
// Where the tokenizer ends the tokens with a summary token
// (tokenize/summary_token.hpp), the genes' queries attend to it as to the
// others, and it is also read to every gene by a linear map of its own
// (decode/summary_readout.hpp): each gene its own weights, where the
// attention path reads every gene through one shared map.
#pragma once

#include "connectivity/attention_layer.hpp"
#include "decode/gene_decoder.hpp"
#include "decode/gene_readout.hpp"

namespace exprflow {

class SetUnpoolingImpl : public GeneDecoderImpl {
 public:
  // n_summary (0 or 1): whether the last token is a summary token.
  SetUnpoolingImpl(int64_t n_genes, int64_t token_dim, int64_t pool_heads, int64_t heads, int64_t n_summary = 0);

  // The gene tokens' MLP output is never built: its last product and the
  // read-out fold into one (AttentionLayerImpl::forward_read_out).
  GeneOutput forward(const Tensor& tokens) override;  // (B, T, D) -> (B, G) [x 2]
  // The same function, the gene tokens (B, G, D) built and read out: what
  // the tests compare forward() against.
  GeneOutput forward_reference(const Tensor& tokens);  // (B, T, D) -> (B, G) [x 2]

 private:
  GeneOutput with_summary(GeneOutput out, const Tensor& tokens);  // adds the summary token's map

  int64_t n_genes_, heads_;
  Tensor queries_;  // (G, D)
  AttentionLayer unpool_{nullptr};
  GeneReadout readout_{nullptr};
  Linear summary_{nullptr};  // D -> heads * G, where the last token is a summary token
};
TORCH_MODULE(SetUnpooling);

}  // namespace exprflow
