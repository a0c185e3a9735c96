#include "decode/mlp_decoder.hpp"
#include "runtime/linear.hpp"

#include <stdexcept>

namespace exprflow {

GeneOutput split_heads(const Tensor& out, int64_t n_genes, int64_t heads) {
  if (heads == 1) return {out, Tensor()};
  std::vector<Tensor> parts = out.split(n_genes, 1);  // 2 x (B, G)
  return {parts[0], parts[1]};
}

MlpDecoderImpl::MlpDecoderImpl(int64_t in_features, int64_t hidden, int64_t n_genes, int64_t heads)
    : n_genes_(n_genes), heads_(heads) {
  if (heads != 1 && heads != 2) throw std::invalid_argument("a gene decoder has 1 or 2 heads");
  in_ = register_module("linear_in", Linear(in_features, hidden));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  out_ = register_module("linear_out", Linear(hidden, heads * n_genes));
  // Zero output layer (DiT's final layer): the untrained model predicts zero
  // and mid-way variance, a neutral start for both heads.
  torch::NoGradGuard no_grad;
  out_->weight.zero_();
  out_->bias.zero_();
}

GeneOutput MlpDecoderImpl::forward(const Tensor& tokens) {
  Tensor h = at::gelu(norm_->forward(in_->forward(tokens.flatten(1))));  // (B, hidden)
  return split_heads(out_->forward(h), n_genes_, heads_);                // (B, G) [x 2]
}

}  // namespace exprflow
