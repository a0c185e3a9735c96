#include "tokenize/gene_value_tokens.hpp"

namespace exprflow {

GeneValueTokensImpl::GeneValueTokensImpl(int64_t n_genes, int64_t token_dim)
    : n_genes_(n_genes), token_dim_(token_dim) {
  // Unit-scale values (standardised expression) and unit-scale gene
  // identities: neither drowns the other at the first LayerNorm.
  gene_ = register_parameter("gene", at::randn({n_genes, token_dim}));
  value_ = register_parameter("value", at::randn({token_dim}));
  value_bias_ = register_parameter("value_bias", at::zeros({token_dim}));
}

Tensor GeneValueTokensImpl::forward(const Tensor& x) {
  return gene_ + x.unsqueeze(-1) * value_ + value_bias_;  // (B, G, D)
}

}  // namespace exprflow
