#include "decode/rank_readout.hpp"

#include <stdexcept>

#include "decode/summary_readout.hpp"
#include "tokenize/rank_tokens.hpp"

namespace exprflow {

RankReadoutImpl::RankReadoutImpl(int64_t n_genes, int64_t n_top, int64_t token_dim, int64_t heads, int64_t n_summary)
    : n_genes_(n_genes), n_top_(n_top), heads_(heads) {
  if (heads != 1 && heads != 2) throw std::invalid_argument("a gene decoder has 1 or 2 heads");
  pooled_ = register_module("pooled", Linear(token_dim, heads * n_genes));
  own_ = register_module("own", Linear(torch::nn::LinearOptions(token_dim, heads).bias(false)));
  summary_ = register_summary_readout(*this, n_summary, token_dim, heads, n_genes);
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) p.zero_();
}

GeneOutput RankReadoutImpl::forward(const Tensor&) {
  throw std::invalid_argument("the rank readout needs the cell state its tokens came from (decode(tokens, x))");
}

GeneOutput RankReadoutImpl::decode(const Tensor& tokens, const Tensor& x, const Tensor& token_genes) {
  const int64_t n_tokens = n_top_ + (summary_ ? 1 : 0);
  if (tokens.size(1) != n_tokens || x.size(1) != n_genes_) {
    throw std::invalid_argument("the rank readout needs " + std::to_string(n_tokens) + " tokens and " +
                                std::to_string(n_genes_) + " genes");
  }
  const int64_t B = tokens.size(0);
  if (token_genes.defined() && token_genes.sizes() != at::IntArrayRef{B, n_top_}) {
    throw std::invalid_argument("the rank readout needs the gene of each of the " + std::to_string(n_top_) +
                                " tokens of each cell");
  }
  // The tokenizer's own selection where the network passes it on: the
  // same genes, and a second selection costs about as much as the first.
  const Tensor top = token_genes.defined() ? token_genes : top_gene_indices(x, n_top_);  // (B, k)
  const Tensor ranked = tokens.narrow(1, 0, n_top_);                             // (B, k, D)
  Tensor out = pooled_->forward(ranked.mean(1));                                  // (B, heads * G)
  if (summary_) out = out + summary_->forward(tokens.select(1, n_top_));          // (B, heads * G)
  out = out.view({B, heads_, n_genes_});                                          // (B, heads, G)
  const Tensor own = own_->forward(ranked).permute({0, 2, 1});                    // (B, heads, k)
  out = out.scatter_add(2, top.unsqueeze(1).expand({B, heads_, n_top_}), own);  // (B, heads, G)
  return split_heads(out.reshape({B, heads_ * n_genes_}), n_genes_, heads_);    // (B, G) [x 2]
}

}  // namespace exprflow
