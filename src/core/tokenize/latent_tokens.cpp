#include "tokenize/latent_tokens.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

LatentTokenEncoderImpl::LatentTokenEncoderImpl(int64_t n_genes, int64_t hidden,
                                               int64_t n_tokens, int64_t token_dim)
    : n_tokens_(n_tokens), token_dim_(token_dim) {
  in_ = register_module("linear_in", Linear(n_genes, hidden));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  out_ = register_module("linear_out", Linear(hidden, n_tokens * token_dim));
  position_ = register_parameter("position", at::randn({1, n_tokens, token_dim}) * 0.02);
}

Tensor LatentTokenEncoderImpl::content(const Tensor& x) {
  Tensor h = at::gelu(norm_->forward(in_->forward(x)));         // (B, hidden)
  return out_->forward(h).view({x.size(0), n_tokens_, token_dim_});  // (B, m, d)
}

Tensor LatentTokenEncoderImpl::weight_loadings() const {
  torch::NoGradGuard no_grad;
  Tensor path = at::matmul(out_->weight, in_->weight);                 // (m*d, G)
  return path.view({n_tokens_, token_dim_, path.size(1)}).norm(2, {1});  // (m, G)
}

Tensor LatentTokenEncoderImpl::forward(const Tensor& x) {
  return content(x) + position_;  // (B, m, d)
}

}  // namespace exprflow
