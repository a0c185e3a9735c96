#include "tokenize/rank_tokens.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace exprflow {

Tensor top_gene_indices(const Tensor& x, int64_t k) {
  if (x.dim() != 2) throw std::invalid_argument("rank tokens need a (cells, genes) matrix");
  if (k < 1 || k > x.size(1)) {
    throw std::invalid_argument("rank tokens: " + std::to_string(k) + " top genes of " + std::to_string(x.size(1)));
  }
  // A stable descending sort breaks ties by gene index (topk's order among
  // equal values is unspecified). Sorting G values per cell costs little
  // next to the backbone over the k tokens.
  return std::get<1>(x.detach().sort(/*stable=*/true, /*dim=*/1, /*descending=*/true)).narrow(1, 0, k);  // (B, k)
}

RankTokensImpl::RankTokensImpl(int64_t n_genes, int64_t n_top, int64_t token_dim)
    : n_genes_(n_genes), n_top_(std::min(n_top, n_genes)), token_dim_(token_dim) {
  if (n_top < 1) throw std::invalid_argument("setting 'n_top' must be at least 1");
  // Unit-scale gene identities, values (standardised expression) and
  // positions: none drowns the others at the first LayerNorm.
  gene_ = register_parameter("gene", at::randn({n_genes, token_dim}));
  value_ = register_parameter("value", at::randn({token_dim}));
  value_bias_ = register_parameter("value_bias", at::zeros({token_dim}));
  position_ = register_parameter("position", at::randn({n_top_, token_dim}));
}

Tensor RankTokensImpl::content(const Tensor& x) {
  const Tensor top = top_gene_indices(x, n_top_);                              // (B, k)
  const Tensor genes = gene_.index_select(0, top.reshape(-1)).view({x.size(0), n_top_, token_dim_});  // (B, k, D)
  return genes + x.gather(1, top).unsqueeze(-1) * value_ + value_bias_;       // (B, k, D)
}

Tensor RankTokensImpl::forward(const Tensor& x) {
  return content(x) + position_;  // (B, k, D)
}

}  // namespace exprflow
