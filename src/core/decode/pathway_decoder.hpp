// Gene-set tokens back to genes, the adjoint of the pathway tokenizer: each
// token predicts its member genes, and a gene in several sets gets the mean
// of their predictions,
//
//   value_g = mean_{sets s holding g} <h_s, u_{s,g}> + c_g,
//
// with the residual token writing the genes in no set. u is zero-initialised
// (as DiT's final layer) so the untrained network predicts 0.
#pragma once

#include "decode/gene_decoder.hpp"
#include "tokenize/gene_set_layout.hpp"

namespace exprflow {

class PathwayDecoderImpl : public GeneDecoderImpl {
 public:
  PathwayDecoderImpl(GeneSetLayout layout, int64_t token_dim, int64_t heads = 1);
  GeneOutput forward(const Tensor& tokens) override;  // (B, T, D) -> (B, G) [x 2]

 private:
  GeneSetLayout layout_;
  int64_t token_dim_, heads_;
  Tensor pair_gene_;   // (E,) int64 buffer
  Tensor gene_share_;  // (G,) float buffer: 1 / sets holding the gene
  Tensor weight_;      // (E, heads * D): u per pair and head
  Tensor bias_;        // (heads * G,)
};
TORCH_MODULE(PathwayDecoder);

}  // namespace exprflow
