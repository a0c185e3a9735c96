#include "tokenize/set_pooling_tokens.hpp"

namespace exprflow {

SetPoolingTokensImpl::SetPoolingTokensImpl(int64_t n_genes, int64_t n_tokens, int64_t token_dim,
                                           int64_t pool_heads, bool summary_token)
    : n_tokens_(n_tokens), token_dim_(token_dim) {
  genes_ = register_module("genes", GeneValueTokens(n_genes, token_dim));
  // Unit-scale seeds: distinct queries from the first step, so the m tokens
  // do not start as copies of one another.
  seeds_ = register_parameter("seeds", at::randn({n_tokens, token_dim}));
  pool_ = register_module("pool", AttentionLayer(token_dim, pool_heads, /*mlp_ratio=*/2.0, /*dropout=*/0.0,
                                                 /*cross=*/true));
  if (summary_token) summary_ = register_summary_token(*this, n_genes, token_dim);
}

Tensor SetPoolingTokensImpl::forward(const Tensor& x) {
  // (1, m, D) seeds shared by every cell -> (B, m, D)
  const Tensor pooled = pool_->forward_affine_memory(seeds_.unsqueeze(0), genes_->shared(), genes_->value(), x);
  return append_summary_token(pooled, summary_, x);  // (B, T, D)
}

Tensor SetPoolingTokensImpl::forward_reference(const Tensor& x) {
  const Tensor genes = genes_->forward(x);                                // (B, G, D)
  return append_summary_token(pool_->forward(seeds_.unsqueeze(0), genes), summary_, x);  // (B, T, D)
}

}  // namespace exprflow
