#include "tokenize/pathway_tokens.hpp"

#include <cmath>

namespace exprflow {

PathwayTokensImpl::PathwayTokensImpl(GeneSetLayout layout, int64_t token_dim, bool summary_token)
    : layout_(std::move(layout)), token_dim_(token_dim) {
  const int64_t T = layout_.n_tokens(), E = layout_.n_pairs();
  pair_gene_ = register_buffer("pair_gene", layout_index(layout_.pair_gene));
  pair_token_ = register_buffer("pair_token", layout_index(layout_.pair_token));
  weight_ = register_parameter("weight", at::empty({E, token_dim}));
  bias_ = register_parameter("bias", at::zeros({T, token_dim}));
  {
    torch::NoGradGuard no_grad;
    // As nn.Linear initialises a layer with the token's genes as inputs: a
    // 5-gene set and the 1,000-gene residual start on the same scale.
    for (int64_t t = 0; t < T; ++t) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(layout_.token_size(t)));
      weight_.narrow(0, layout_.offsets[t], layout_.token_size(t)).uniform_(-bound, bound);
    }
  }
  if (summary_token) summary_ = register_summary_token(*this, layout_.n_genes, token_dim);
}

std::vector<std::string> PathwayTokensImpl::token_names() const {
  std::vector<std::string> names = layout_.token_names;
  if (summary_) names.emplace_back(kSummaryTokenName);
  return names;
}

Tensor PathwayTokensImpl::forward(const Tensor& x) {
  const std::vector<int64_t> sizes = layout_.token_sizes();
  const std::vector<Tensor> members = x.index_select(1, pair_gene_).split_with_sizes(sizes, 1);  // T x (B, m_t)
  const std::vector<Tensor> weights = weight_.split_with_sizes(sizes, 0);                        // T x (m_t, D)
  std::vector<Tensor> tokens;
  tokens.reserve(sizes.size());
  for (size_t t = 0; t < sizes.size(); ++t) tokens.push_back(at::matmul(members[t], weights[t]));  // (B, D)
  const Tensor sets = at::stack(tokens, 1) + bias_;                 // (B, sets [+ residual], D)
  return append_summary_token(sets, summary_, x);  // (B, T, D)
}

Tensor PathwayTokensImpl::weight_loadings() const {
  torch::NoGradGuard no_grad;
  Tensor loadings = at::zeros({layout_.n_tokens(), layout_.n_genes}, weight_.options());  // (T, G)
  loadings.index_put_({pair_token_, pair_gene_}, weight_.norm(2, {1}));
  if (!summary_) return loadings;
  return at::cat({loadings, summary_->weight.norm(2, {0}).unsqueeze(0)}, 0);  // (D, G) -> (T, G)
}

}  // namespace exprflow
