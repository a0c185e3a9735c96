#include "decode/linear_decoder.hpp"
#include "runtime/linear.hpp"

#include <stdexcept>

namespace exprflow {

LinearDecoderImpl::LinearDecoderImpl(int64_t in_features, int64_t n_genes, int64_t heads)
    : n_genes_(n_genes), heads_(heads) {
  if (heads != 1 && heads != 2) throw std::invalid_argument("a gene decoder has 1 or 2 heads");
  out_ = register_module("linear_out", Linear(in_features, heads * n_genes));
  torch::NoGradGuard no_grad;
  out_->weight.zero_();
  out_->bias.zero_();
}

GeneOutput LinearDecoderImpl::forward(const Tensor& tokens) {
  return split_heads(out_->forward(tokens.flatten(1)), n_genes_, heads_);  // (B, G) [x 2]
}

}  // namespace exprflow
