#include "decode/gene_readout.hpp"
#include "runtime/linear.hpp"

#include <stdexcept>

namespace exprflow {

GeneReadoutImpl::GeneReadoutImpl(int64_t n_genes, int64_t token_dim, int64_t heads, bool per_gene_weights)
    : n_genes_(n_genes), heads_(heads) {
  if (heads != 1 && heads != 2) throw std::invalid_argument("a gene decoder has 1 or 2 heads");
  if (per_gene_weights) {
    gene_weight_ = register_parameter("gene_weight", at::zeros({n_genes, heads, token_dim}));
  } else {
    out_ = register_module("linear_out", Linear(torch::nn::LinearOptions(token_dim, heads).bias(false)));
    torch::NoGradGuard no_grad;
    out_->weight.zero_();
  }
  bias_ = register_parameter("bias", at::zeros({heads * n_genes}));
}

GeneOutput GeneReadoutImpl::forward(const Tensor& tokens) {
  if (tokens.size(1) != n_genes_) throw std::invalid_argument("the gene readout needs one token per gene");
  return from_read_out(gene_weight_.defined() ? at::einsum("bgd,ghd->bgh", {tokens, gene_weight_})  // (B, G, heads)
                                              : out_->forward(tokens));                             // (B, G, heads)
}

const Tensor& GeneReadoutImpl::shared_weight() const {
  if (gene_weight_.defined()) throw std::logic_error("this gene readout has one map per gene, not a shared one");
  return out_->weight;  // (heads, D)
}

GeneOutput GeneReadoutImpl::from_read_out(const Tensor& read_out) {
  const int64_t B = read_out.size(0);
  Tensor out = read_out.permute({0, 2, 1}).reshape({B, heads_ * n_genes_}) + bias_;  // (B, heads*G)
  return split_heads(out, n_genes_, heads_);                                          // (B, G) [x 2]
}

}  // namespace exprflow
