// Rank tokens back to all genes: every gene gets a prediction from the pooled
// sequence (one linear map of the tokens' mean, as a linear decoder of a
// state vector), and the k genes that made the sequence add their own token's
// readout on top (scattered back to the gene each rank stood for). A summary
// token after the k ranked ones (tokenize/rank_tokens.hpp) is read to all
// genes by a map of its own; the pooled map reads the ranked tokens' mean.
// Every map starts at zero, as the other decoders do.
#pragma once

#include "decode/gene_decoder.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class RankReadoutImpl : public GeneDecoderImpl {
 public:
  // n_top ranked tokens, then n_summary (0 or 1) summary tokens.
  RankReadoutImpl(int64_t n_genes, int64_t n_top, int64_t token_dim, int64_t heads, int64_t n_summary = 0);

  // Needs the state the tokens were made from: use decode().
  GeneOutput forward(const Tensor& tokens) override;
  // (B, k [+ 1], D), (B, G), (B, k) or undefined -> (B, G) [x 2]
  GeneOutput decode(const Tensor& tokens, const Tensor& x, const Tensor& token_genes = Tensor()) override;

 private:
  int64_t n_genes_, n_top_, heads_;
  Linear pooled_{nullptr};   // D -> heads * G
  Linear own_{nullptr};      // D -> heads, per token
  Linear summary_{nullptr};  // D -> heads * G, where there is a summary token
};
TORCH_MODULE(RankReadout);

}  // namespace exprflow
