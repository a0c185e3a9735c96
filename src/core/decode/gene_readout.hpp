// Gene tokens back to genes: each gene's own token read out by a linear map
// (zero-initialised) plus a per-gene bias. For tokenizers with one token per
// gene (GRN attention) or one query per gene (set unpooling), where a
// flattening decoder would need G x G x D weights.
//
// per_gene_weights: every gene has its own map (G x D weights) instead of one
// shared by all. A shared map reads the same direction of every gene's token,
// so a gene's condition-specific value must be written into that direction by
// the backbone's shared layers; with its own map, the condition's final
// modulation (a shift of every token) already moves each gene by its own
// amount. Measured (issue 10's note): on 400 synthetic genes and 9
// conditions, sampled condition means correlated 0.97-0.98 with the truth per
// gene against 0.17-0.47 shared. On the example data grn_attention also
// needs a high learning rate to use it (models/compositions.cpp).
#pragma once

#include "decode/gene_decoder.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class GeneReadoutImpl : public GeneDecoderImpl {
 public:
  GeneReadoutImpl(int64_t n_genes, int64_t token_dim, int64_t heads, bool per_gene_weights);
  GeneOutput forward(const Tensor& tokens) override;  // (B, G, D) -> (B, G) [x 2]
  // The shared map's weight (heads, D), for a layer that folds the read-out
  // into its own last product (AttentionLayerImpl::forward_read_out); then
  // from_read_out() adds the genes' biases. Shared maps only.
  const Tensor& shared_weight() const;
  GeneOutput from_read_out(const Tensor& read_out);  // (B, G, heads) -> (B, G) [x 2]

 private:
  int64_t n_genes_, heads_;
  Linear out_{nullptr};  // D -> heads, zero-initialised; shared by the genes
  Tensor gene_weight_;              // (G, heads, D), zero-initialised; per_gene_weights only
  Tensor bias_;                     // (heads * G,)
};
TORCH_MODULE(GeneReadout);

}  // namespace exprflow
