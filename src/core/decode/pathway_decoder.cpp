#include "decode/pathway_decoder.hpp"

#include <stdexcept>
#include <string>

#include "decode/summary_readout.hpp"

namespace exprflow {

PathwayDecoderImpl::PathwayDecoderImpl(GeneSetLayout layout, int64_t token_dim, int64_t heads, int64_t n_summary)
    : layout_(std::move(layout)), token_dim_(token_dim), heads_(heads) {
  if (heads != 1 && heads != 2) throw std::invalid_argument("a gene decoder has 1 or 2 heads");
  pair_gene_ = register_buffer("pair_gene", layout_index(layout_.pair_gene));
  gene_share_ = register_buffer("gene_share", layout_values(layout_.gene_share));
  weight_ = register_parameter("weight", at::zeros({layout_.n_pairs(), heads * token_dim}));
  bias_ = register_parameter("bias", at::zeros({heads * layout_.n_genes}));
  summary_ = register_summary_readout(*this, n_summary, token_dim, heads, layout_.n_genes);
}

GeneOutput PathwayDecoderImpl::forward(const Tensor& tokens) {
  const int64_t B = tokens.size(0), G = layout_.n_genes;
  const std::vector<int64_t> sizes = layout_.token_sizes();
  const std::vector<Tensor> weights = weight_.split_with_sizes(sizes, 0);  // T x (m_t, heads*D)
  const int64_t n_tokens = layout_.n_tokens() + (summary_ ? 1 : 0);
  if (tokens.size(1) != n_tokens) {
    throw std::invalid_argument("the pathway decoder needs " + std::to_string(n_tokens) + " tokens");
  }
  const std::vector<Tensor> token = tokens.unbind(1);                      // T x (B, D)
  std::vector<Tensor> per_token;
  per_token.reserve(sizes.size());
  for (size_t t = 0; t < sizes.size(); ++t) {
    Tensor u = weights[t].reshape({sizes[t] * heads_, token_dim_});  // (m*heads, D)
    per_token.push_back(at::matmul(token[t], u.t()));               // (B, m*heads)
  }
  Tensor pairs = at::cat(per_token, 1).view({B, layout_.n_pairs(), heads_});             // (B, E, heads)
  Tensor genes = at::zeros({B, G, heads_}, tokens.options()).index_add(1, pair_gene_, pairs);  // (B, G, heads)
  genes = genes * gene_share_.view({1, G, 1});                                           // mean over sets
  Tensor out = genes.permute({0, 2, 1}).reshape({B, heads_ * G}) + bias_;                // (B, heads*G)
  if (summary_) out = out + summary_->forward(token.back());                             // (B, heads*G)
  return split_heads(out, G, heads_);                                                    // (B, G) [x 2]
}

}  // namespace exprflow
