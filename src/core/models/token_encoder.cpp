#include "models/token_encoder.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

TokenEncoderImpl::TokenEncoderImpl(std::shared_ptr<TokenizerImpl> tokens, int64_t per_token, double dropout)
    : per_token_(per_token), dropout_(dropout) {
  const int64_t hidden = tokens->token_dim();
  tokens_ = register_module("tokens", std::move(tokens));
  norm_in_ = register_module("norm_in", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  hidden_ = register_module("hidden", Linear(hidden, hidden));
  norm_hidden_ = register_module("norm_hidden", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  out_ = register_module("out", Linear(hidden, 2 * per_token));
}

std::pair<Tensor, Tensor> TokenEncoderImpl::forward(const Tensor& log_expression) {
  Tensor h = tokens_->forward(log_expression);                                             // (B, T, H)
  h = torch::dropout(at::silu(norm_in_->forward(h)), dropout_, is_training());            // (B, T, H)
  h = torch::dropout(at::silu(norm_hidden_->forward(hidden_->forward(h))), dropout_, is_training());
  Tensor out = out_->forward(h);                                                            // (B, T, 2k)
  return {out.narrow(2, 0, per_token_), out.narrow(2, per_token_, per_token_)};
}

}  // namespace exprflow
