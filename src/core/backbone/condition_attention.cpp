#include "backbone/condition_attention.hpp"

#include "backbone/attention.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

ConditionAttentionImpl::ConditionAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
  check_heads(dim, heads, "hidden width", "n_heads");
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  query_ = register_module("query", Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
  key_value_ = register_module("key_value", Linear(torch::nn::LinearOptions(dim, 2 * dim).bias(false)));
  proj_ = register_module("proj", Linear(dim, dim));
  torch::NoGradGuard no_grad;
  proj_->weight.zero_();
  proj_->bias.zero_();
}

Tensor ConditionAttentionImpl::forward(const Tensor& x, const Tensor& condition_tokens) {
  const Tensor q = split_heads(query_->forward(norm_->forward(x)), heads_);  // (B, H, T, Dh)
  std::vector<Tensor> kv = key_value_->forward(condition_tokens).chunk(2, -1);  // 2 x (B, C, D)
  const Tensor out = attention(q, split_heads(kv[0], heads_), split_heads(kv[1], heads_));  // (B, H, T, Dh)
  return proj_->forward(merge_heads(out));  // (B, T, D)
}

}  // namespace exprflow
