// Rank tokens back to all genes: every gene gets a prediction from the pooled
// sequence (one linear map of the tokens' mean, as a linear decoder of a
// state vector), and the k genes that made the sequence add their own token's
// readout on top (scattered back to the gene each rank stood for). Both maps
// start at zero, as the other decoders do.
#pragma once

#include "decode/gene_decoder.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class RankReadoutImpl : public GeneDecoderImpl {
 public:
  RankReadoutImpl(int64_t n_genes, int64_t n_top, int64_t token_dim, int64_t heads);

  // Needs the state the tokens were made from: use decode().
  GeneOutput forward(const Tensor& tokens) override;
  // (B, k, D), (B, G), (B, k) or undefined -> (B, G) [x 2]
  GeneOutput decode(const Tensor& tokens, const Tensor& x, const Tensor& token_genes = Tensor()) override;

 private:
  int64_t n_genes_, n_top_, heads_;
  Linear pooled_{nullptr};  // D -> heads * G
  Linear own_{nullptr};                // D -> heads, per token
};
TORCH_MODULE(RankReadout);

}  // namespace exprflow
