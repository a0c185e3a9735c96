// Gene-set tokens back to genes, the adjoint of the pathway tokenizer: each
// token predicts its member genes, and a gene in several sets gets the mean
// of their predictions,
//
//   value_g = mean_{sets s holding g} <h_s, u_{s,g}> + c_g,
//
// with the residual token writing the genes in no set. u is zero-initialised
// (as DiT's final layer) so the untrained network predicts 0. A summary
// token after them (tokenize/summary_token.hpp) is read to every gene by a
// map of its own (decode/summary_readout.hpp).
#pragma once

#include "decode/gene_decoder.hpp"
#include "runtime/linear.hpp"
#include "tokenize/gene_set_layout.hpp"

namespace exprflow {

class PathwayDecoderImpl : public GeneDecoderImpl {
 public:
  // n_summary (0 or 1): whether a summary token follows the sets' and the residual one.
  PathwayDecoderImpl(GeneSetLayout layout, int64_t token_dim, int64_t heads = 1, int64_t n_summary = 0);
  GeneOutput forward(const Tensor& tokens) override;  // (B, T, D) -> (B, G) [x 2]

 private:
  GeneSetLayout layout_;
  int64_t token_dim_, heads_;
  Tensor pair_gene_;   // (E,) int64 buffer
  Tensor gene_share_;  // (G,) float buffer: 1 / sets holding the gene
  Tensor weight_;      // (E, heads * D): u per pair and head
  Tensor bias_;        // (heads * G,)
  Linear summary_{nullptr};  // D -> heads * G, where a summary token follows
};
TORCH_MODULE(PathwayDecoder);

}  // namespace exprflow
