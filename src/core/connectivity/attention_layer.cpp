#include "connectivity/attention_layer.hpp"

#include <cmath>
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
  return mlp_block(project(y, attend(h, m, query_, key_value_, bias, weights)));  // (B, T, D)
}

Tensor AttentionLayerImpl::project(const Tensor& y, const Tensor& attended) {
  return y + at::dropout(proj_->forward(attended), dropout_, is_training());  // (B, T, D)
}

Tensor AttentionLayerImpl::mlp_block(const Tensor& z) {
  const Tensor f = mlp_out_->forward(at::gelu(mlp_in_->forward(norm_mlp_->forward(z))));  // (B, T, D)
  return z + at::dropout(f, dropout_, is_training());                                    // (B, T, D)
}

Tensor AttentionLayerImpl::forward_read_out(const Tensor& x, const Tensor& memory, const Tensor& readout) {
  if (query_self_ || (dropout_ > 0 && is_training())) return at::linear(forward(x, memory), readout);  // (B, T, K)
  const Tensor h = norm_->forward(x);                           // (1|B, T, D)
  const Tensor m = cross_ ? norm_memory_->forward(memory) : h;  // (B, S, D)
  const Tensor y = project(x, attend(h, m, query_, key_value_, Tensor(), nullptr));  // (B, T, D)
  const Tensor hidden = at::gelu(mlp_in_->forward(norm_mlp_->forward(y)));           // (B, T, hidden)
  // (y + hidden W_out^T + b_out) w^T = y w^T + hidden (w W_out)^T + w b_out.
  const Tensor folded = at::matmul(readout, mlp_out_->weight);  // (K, hidden); LoRA's sum when attached
  return at::linear(y, readout) + at::linear(hidden, folded, at::matmul(readout, mlp_out_->bias));  // (B, T, K)
}

Tensor AttentionLayerImpl::forward_affine_memory(const Tensor& x, const Tensor& base, const Tensor& direction,
                                                 const Tensor& coefficient) {
  if (!cross_ || query_self_) {
    throw std::logic_error("forward_affine_memory: a cross-attention layer without query self-attention only");
  }
  const int64_t B = coefficient.size(0), S = base.size(0), D = base.size(1), H = heads_, Dh = D / H;
  if (coefficient.size(1) != S || direction.numel() != D) {
    throw std::invalid_argument("forward_affine_memory: base (S, D), direction (D) and coefficient (B, S) disagree");
  }
  // LayerNorm of a + c v per token from its centred parts: mean 0 and
  // variance (|a|^2 + 2 c a.v + c^2 |v|^2) / D.
  const Tensor a = base - base.mean(-1, /*keepdim=*/true);  // (S, D)
  const Tensor v = direction - direction.mean();            // (D)
  const Tensor variance =
      a.pow(2).mean(-1) + 2 * coefficient * (a * v).mean(-1) + coefficient.pow(2) * v.pow(2).mean();  // (B, S)
  const Tensor r = at::rsqrt(variance + norm_memory_->options.eps()).view({B, 1, 1, S});  // (B, 1, 1, S)
  const Tensor c = coefficient.view({B, 1, 1, S});                                       // (B, 1, 1, S)
  // The projection is linear: key_value(LN) = r (A + c V) + K0, with A and V
  // the projections of the scaled centred parts and K0 that of LN's shift.
  const Tensor gamma = norm_memory_->weight, weight = key_value_->weight;  // weight: LoRA's sum when attached
  const Tensor A = at::linear(a * gamma, weight);                         // (S, 2D)
  const Tensor V = at::linear(v * gamma, weight);                         // (2D)
  const Tensor K0 = at::linear(norm_memory_->bias, weight, key_value_->bias);  // (2D)
  const Tensor key_a = A.narrow(1, 0, D).view({S, H, Dh}).permute({1, 2, 0});  // (H, Dh, S)
  const Tensor value_a = A.narrow(1, D, D).view({S, H, Dh}).permute({1, 0, 2});  // (H, S, Dh)
  const Tensor key_v = V.narrow(0, 0, D).view({H, Dh, 1});                       // (H, Dh, 1)
  const Tensor value_v = V.narrow(0, D, D).view({H, 1, Dh});                     // (H, 1, Dh)
  const Tensor value_0 = K0.narrow(0, D, D).view({H, 1, Dh});                    // (H, 1, Dh)

  const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
  const Tensor q = split_heads(query_->forward(norm_->forward(x)), H) * scale;  // (1|B, H, T, Dh)
  // Scores q . (r (A + c V) + K0): the keys' shift K0 adds the same q . K0 to
  // every score of a query, which the softmax ignores.
  const Tensor scores = at::addcmul(at::matmul(q, key_a), c, at::matmul(q, key_v)) * r;  // (B, H, T, S)
  const Tensor pr = at::softmax(scores, -1) * r;                                        // (B, H, T, S)
  // Weights sum to 1 over s, so the values' shift comes out whole.
  const Tensor pr_c = at::matmul(pr, c.transpose(-2, -1));                           // (B, H, T, 1)
  const Tensor out = at::matmul(pr, value_a) + pr_c * value_v + value_0;              // (B, H, T, Dh)
  return mlp_block(project(x, merge_heads(out)));  // (B, T, D)
}

}  // namespace exprflow
