#include "decode/gene_value_head.hpp"

#include <stdexcept>
#include <string>

namespace exprflow {

GeneValueHeadImpl::GeneValueHeadImpl(int64_t n_genes, int64_t context_dim, int64_t width) {
  if (width < 1) throw std::invalid_argument("setting 'value_head' must be a whole number of at least 1 (or 0: none)");
  // Unit-scale slopes and shifts on standardised values: the k units of a
  // gene bend at different places across its range.
  input_scale_ = register_parameter("input_scale", at::randn({n_genes, width}));
  input_shift_ = register_parameter("input_shift", at::randn({n_genes, width}));
  output_ = register_parameter("output", at::zeros({n_genes, width}));
  context_ = register_module("context", Linear(context_dim, width));
}

Tensor GeneValueHeadImpl::forward(const Tensor& x_t, const Tensor& context) {
  if (x_t.dim() != 2 || x_t.size(1) != input_scale_.size(0)) {
    throw std::invalid_argument("the gene value head needs (cells, " + std::to_string(input_scale_.size(0)) +
                                ") values");
  }
  const Tensor shift = context_->forward(context).unsqueeze(1);                         // (B, 1, k)
  const Tensor hidden = at::silu(x_t.unsqueeze(-1) * input_scale_ + input_shift_ + shift);  // (B, G, k)
  return (hidden * output_).sum(-1);                                                     // (B, G)
}

}  // namespace exprflow
