#include "tokenize/latent_split.hpp"
#include "runtime/linear.hpp"

#include <stdexcept>
#include <string>

namespace exprflow {

LatentSplitImpl::LatentSplitImpl(int64_t latent_dim, int64_t n_tokens, int64_t token_dim)
    : n_tokens_(n_tokens), chunk_(n_tokens > 0 ? latent_dim / n_tokens : 0), token_dim_(token_dim) {
  if (n_tokens < 1 || latent_dim % n_tokens != 0) {
    throw std::invalid_argument("setting 'n_tokens' (" + std::to_string(n_tokens) +
                                ") must divide setting 'latent_dim' (" + std::to_string(latent_dim) + ")");
  }
  in_ = register_module("linear_in", Linear(chunk_, token_dim));
  // Small random positions (as ViT): zero would make the chunks exchangeable
  // at initialisation only through their values.
  position_ = register_parameter("position", at::randn({n_tokens, token_dim}) * 0.02);
}

Tensor LatentSplitImpl::content(const Tensor& z) {
  return in_->forward(z.reshape({z.size(0), n_tokens_, chunk_}));  // (B, T, D)
}

Tensor LatentSplitImpl::forward(const Tensor& z) {
  return content(z) + position_;  // (B, T, D)
}

}  // namespace exprflow
