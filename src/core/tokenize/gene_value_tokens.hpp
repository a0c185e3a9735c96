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
  // forward(x) = shared() + x (x) value(): the part every cell shares (G, D)
  // and the vector each value scales (D), for layers that use the tokens
  // without building them (AttentionLayerImpl::forward_affine_memory).
  Tensor shared() const { return gene_ + value_bias_; }
  const Tensor& value() const { return value_; }

 private:
  int64_t n_genes_, token_dim_;
  Tensor gene_;        // (G, D)
  Tensor value_;       // (D,)
  Tensor value_bias_;  // (D,)
};
TORCH_MODULE(GeneValueTokens);

}  // namespace exprflow
