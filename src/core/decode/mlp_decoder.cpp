#include "decode/mlp_decoder.hpp"

namespace exprflow {

MlpDecoderImpl::MlpDecoderImpl(int64_t in_features, int64_t hidden, int64_t n_genes)
    : n_genes_(n_genes) {
  in_ = register_module("linear_in", torch::nn::Linear(in_features, hidden));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  out_ = register_module("linear_out", torch::nn::Linear(hidden, 2 * n_genes));
  // Zero output layer (DiT's final layer): the untrained model predicts zero
  // noise and mid-way variance, a neutral start for both heads.
  torch::NoGradGuard no_grad;
  out_->weight.zero_();
  out_->bias.zero_();
}

GeneOutput MlpDecoderImpl::forward(const Tensor& tokens) {
  Tensor h = at::gelu(norm_->forward(in_->forward(tokens.flatten(1))));  // (B, hidden)
  std::vector<Tensor> parts = out_->forward(h).split(n_genes_, 1);      // 2 x (B, G)
  return {parts[0], parts[1]};
}

}  // namespace exprflow
