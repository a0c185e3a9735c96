#include "connectivity/attention_layer.hpp"

#include <stdexcept>

#include "backbone/attention.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

AttentionLayerImpl::AttentionLayerImpl(int64_t dim, int64_t heads, double mlp_ratio, double dropout, bool cross,
                                       bool query_self_attention)
    : heads_(heads), dropout_(dropout), cross_(cross), query_self_(cross && query_self_attention) {
  check_heads(dim, heads, "d_model", "n_heads");
  if (dropout < 0 || dropout >= 1) throw std::invalid_argument("setting 'dropout' must be in [0, 1)");
  const int64_t hidden = static_cast<int64_t>(mlp_ratio * dim);
  if (hidden < 1) throw std::invalid_argument("setting 'mlp_ratio' must be positive");
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  if (cross) norm_memory_ = register_module("norm_memory", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  norm_mlp_ = register_module("norm_mlp", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  query_ = register_module("query", Linear(dim, dim));
  key_value_ = register_module("key_value", Linear(dim, 2 * dim));
  proj_ = register_module("proj", Linear(dim, dim));
  mlp_in_ = register_module("mlp_in", Linear(dim, hidden));
  mlp_out_ = register_module("mlp_out", Linear(hidden, dim));
  if (query_self_) {
    norm_self_ = register_module("norm_self", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
    self_query_ = register_module("self_query", Linear(dim, dim));
    self_key_value_ = register_module("self_key_value", Linear(dim, 2 * dim));
    self_proj_ = register_module("self_proj", Linear(dim, dim));
  }
}

Tensor AttentionLayerImpl::attend(const Tensor& h, const Tensor& m, Linear& query,
                                  Linear& key_value, const Tensor& bias, Tensor* weights) {
  const int64_t B = m.size(0), S = m.size(1), D = h.size(2), Dh = D / heads_;
  Tensor q = split_heads(query->forward(h), heads_);                                        // (B or 1, H, T, Dh)
  if (q.size(0) != B) q = q.expand({B, -1, -1, -1});                                        // shared queries
  Tensor kv = key_value->forward(m).view({B, S, 2, heads_, Dh}).permute({2, 0, 3, 1, 4});  // (2, B, H, S, Dh)
  Tensor probabilities;
  Tensor out = attention(q, kv[0], kv[1], bias, weights != nullptr ? &probabilities : nullptr);  // (B, H, T, Dh)
  if (weights != nullptr) *weights = probabilities.mean(1);  // (B, T, S)
  return merge_heads(out);                                   // (B, T, D)
}

Tensor AttentionLayerImpl::forward(const Tensor& x, const Tensor& memory, const Tensor& bias, Tensor* weights) {
  Tensor y = x;  // (B, T, D)
  if (query_self_) {
    Tensor s = norm_self_->forward(y);  // (B, T, D)
    y = y + at::dropout(self_proj_->forward(attend(s, s, self_query_, self_key_value_, Tensor(), nullptr)),
                        dropout_, is_training());  // (B, T, D)
  }
  Tensor h = norm_->forward(y);                           // (B, T, D)
  Tensor m = cross_ ? norm_memory_->forward(memory) : h;  // (B, S, D)
  Tensor out = proj_->forward(attend(h, m, query_, key_value_, bias, weights));  // (B, T, D)
  y = y + at::dropout(out, dropout_, is_training());                             // (B, T, D)
  Tensor f = mlp_out_->forward(at::gelu(mlp_in_->forward(norm_mlp_->forward(y))));  // (B, T, D)
  return y + at::dropout(f, dropout_, is_training());  // (B, T, D)
}

}  // namespace exprflow
