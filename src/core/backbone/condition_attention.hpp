// Cross-attention from a backbone's tokens to condition tokens (one per
// covariate): condition_path = "cross_attention" of the DiT backbone.
//
// Tokens query the condition tokens (pre-norm, PixArt-alpha's layout); the
// output projection starts at zero, so a fresh block is still the identity,
// as adaLN-Zero makes it.
#pragma once

#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class ConditionAttentionImpl : public torch::nn::Module {
 public:
  ConditionAttentionImpl(int64_t dim, int64_t heads);
  // x (B, T, D), condition tokens (B, C, D) -> (B, T, D), the residual branch.
  Tensor forward(const Tensor& x, const Tensor& condition_tokens);

 private:
  int64_t heads_;
  torch::nn::LayerNorm norm_{nullptr};
  Linear query_{nullptr}, key_value_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(ConditionAttention);

}  // namespace exprflow
