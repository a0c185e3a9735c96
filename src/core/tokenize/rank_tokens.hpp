// Rank tokens (seed design Option 4, Geneformer style): a cell is the
// sequence of its k highest-valued genes, strongest first,
//
//   token_{b,r} = e_{g(b,r)} + x_{b,g(b,r)} w + w_0 + p_r,
//
// a learned gene embedding, an embedding of the gene's value and a learned
// embedding of its rank position r. Which genes make the sequence depends on
// the cell's own state (for a denoiser: its noisy state x_t); tokenize()
// hands the selection on, so that the decoder (decode/rank_readout.hpp) puts
// each token's prediction back on its gene without selecting again.
//
// With summary_token, one more token ends the sequence
// (tokenize/summary_token.hpp), with a position of its own. The k ranked
// genes alone see little of a noisy state (at high noise its top genes are
// near random); the summary token lets attention read every gene.
#pragma once

#include "tokenize/summary_token.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

// The k genes of each cell with the highest values, highest first:
// (B, G) -> (B, k) int64. Ties go to the lower gene index, so the tokenizer
// and the decoder always agree. On the CPU a partial selection (topk)
// bounds the sequence and only the k chosen values are sorted; the result is the first
// k of a stable descending sort of the whole row, which
// top_gene_indices_reference() computes and the tests compare against.
Tensor top_gene_indices(const Tensor& x, int64_t k);
Tensor top_gene_indices_reference(const Tensor& x, int64_t k);

class RankTokensImpl : public TokenizerImpl {
 public:
  // n_top: ranked genes, at most the number of genes (fewer genes: all).
  RankTokensImpl(int64_t n_genes, int64_t n_top, int64_t token_dim, bool summary_token = false);

  Tensor forward(const Tensor& x) override;  // (B, G) -> (B, T, D), T = k [+ 1 summary token]
  TokenizedState tokenize(const Tensor& x) override;  // (B, T, D) and the ranked genes (B, k)
  Tensor content(const Tensor& x) override;  // (B, G) -> (B, T, D), without positions
  // Token r is "the r-th strongest gene", a different gene in every cell: not
  // a part of the cell to interpret. The embedding is the backbone's output.
  bool has_tokens() const override { return false; }
  int64_t n_tokens() const override { return n_top_ + (summary_ ? 1 : 0); }
  int64_t token_dim() const override { return token_dim_; }

 private:
  Tensor content_of(const Tensor& x, const Tensor& top);  // (B, G), (B, k) -> (B, T, D)

  int64_t n_genes_, n_top_, token_dim_;
  Linear summary_{nullptr};  // G -> D, where the sequence ends with a summary token
  Tensor summary_position_;  // (D,)
  Tensor gene_;        // (G, D)
  Tensor value_;       // (D,)
  Tensor value_bias_;  // (D,)
  Tensor position_;    // (k, D)
};
TORCH_MODULE(RankTokens);

}  // namespace exprflow
