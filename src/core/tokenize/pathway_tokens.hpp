// Pathway tokens (seed design Option 2): one token per gene set, each a
// learned linear projection of its member genes' expression,
//
//   token_s = sum_{g in set s} x_g w_{s,g} + b_s,   w_{s,g} in R^D,
//
// plus one residual token for the genes in no set (gene_set_layout.hpp).
// A gene in several sets feeds each of their tokens with its own weights.
// Weights live in one (pairs, D) parameter; each token's rows are a
// contiguous slice, so a token is one small matmul and memory stays
// O(pairs x D) rather than O(sets x genes x D).
//
// With summary_token, one more token follows the sets' and the residual
// one (tokenize/summary_token.hpp), named "summary": each of the others sees
// one gene set alone.
#pragma once

#include "tokenize/gene_set_layout.hpp"
#include "tokenize/summary_token.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

class PathwayTokensImpl : public TokenizerImpl {
 public:
  PathwayTokensImpl(GeneSetLayout layout, int64_t token_dim, bool summary_token = false);

  // The bias b_s tells tokens apart, so there is no separate position term.
  Tensor forward(const Tensor& x) override;  // (B, G) -> (B, T, D), T = sets + residual [+ summary]
  // Per token, the norm of w_{s,g} over D at each member gene, 0 elsewhere;
  // the summary token's row is the norm of its map's column of each gene. (T, G)
  Tensor weight_loadings() const override;
  std::vector<std::string> token_names() const override;
  int64_t n_tokens() const override { return layout_.n_tokens() + (summary_ ? 1 : 0); }
  int64_t token_dim() const override { return token_dim_; }

  const GeneSetLayout& layout() const { return layout_; }

 private:
  GeneSetLayout layout_;
  int64_t token_dim_;
  Tensor pair_gene_;   // (E,) int64 buffer
  Tensor pair_token_;  // (E,) int64 buffer
  Tensor weight_;      // (E, D)
  Tensor bias_;        // (T, D)
  Linear summary_{nullptr};  // G -> D, where a summary token follows
};
TORCH_MODULE(PathwayTokens);

}  // namespace exprflow
