// One token per gene (the GRN attention model's tokenizer): the gene's
// learned embedding plus an embedding of its expression value,
//
//   token_{b,g} = e_g + x_{b,g} w + c,
//
// so that attention between gene tokens can follow a regulatory network.
// Tokens are genes, not summaries of the cell: the model's embedding is its
// backbone's output (has_tokens() is false), as for state vectors.
#pragma once

#include "tokenize/tokenizer.hpp"

namespace exprflow {

class GeneValueTokensImpl : public TokenizerImpl {
 public:
  GeneValueTokensImpl(int64_t n_genes, int64_t token_dim);

  Tensor forward(const Tensor& x) override;  // (B, G) -> (B, G, D)
  bool has_tokens() const override { return false; }
  int64_t n_tokens() const override { return n_genes_; }
  int64_t token_dim() const override { return token_dim_; }

 private:
  int64_t n_genes_, token_dim_;
  Tensor gene_;        // (G, D)
  Tensor value_;       // (D,)
  Tensor value_bias_;  // (D,)
};
TORCH_MODULE(GeneValueTokens);

}  // namespace exprflow
