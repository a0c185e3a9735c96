// A pre-norm transformer layer whose attention is either self-attention or
// cross-attention to a memory sequence, with an optional additive bias
// (ALiBi) and, on request, the head-averaged attention weights.
//
//   [x <- x + Dropout(Proj_s(SelfAttn(LN_s(x))))]   cross layers with query_self_attention
//   x <- x + Dropout(Proj(Attn(LN(x), LN_m(memory))))
//   x <- x + Dropout(MLP(LN(x)))
//
// The attention itself is the shared backbone/attention.hpp (the DiT blocks
// use the same); this layer owns the projections, norms and MLP.
#pragma once

#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class AttentionLayerImpl : public torch::nn::Module {
 public:
  // cross = true: attends to a memory sequence, normalised by its own
  // LayerNorm. query_self_attention (cross only): the queries first attend to
  // each other (decoder style), so CLS tokens and query genes exchange
  // information; pure cross-attention never mixes queries.
  AttentionLayerImpl(int64_t dim, int64_t heads, double mlp_ratio, double dropout, bool cross,
                     bool query_self_attention = false);

  // x: (B, T, D) queries; memory: (B, S, D) keys/values (cross; ignored and
  // may be undefined for self-attention, where S = T); bias: broadcastable to
  // (B, H, T, S) or undefined. weights, when non-null, receives the
  // head-averaged attention (B, T, S). -> (B, T, D)
  // Cross-attention also takes x as (1, T, D), queries shared by every cell
  // (learned seeds, gene queries): their norm and projection then run once,
  // not once per cell, and broadcast.
  Tensor forward(const Tensor& x, const Tensor& memory = Tensor(), const Tensor& bias = Tensor(),
                 Tensor* weights = nullptr);

  int64_t heads() const { return heads_; }

 private:
  // Multi-head attention of h (B, T, D) over m (B, S, D) -> (B, T, D), before the output projection.
  Tensor attend(const Tensor& h, const Tensor& m, Linear& query, Linear& key_value,
                const Tensor& bias, Tensor* weights);

  int64_t heads_;
  double dropout_;
  bool cross_, query_self_;
  torch::nn::LayerNorm norm_{nullptr}, norm_memory_{nullptr}, norm_mlp_{nullptr}, norm_self_{nullptr};
  Linear query_{nullptr}, key_value_{nullptr}, proj_{nullptr}, mlp_in_{nullptr}, mlp_out_{nullptr};
  Linear self_query_{nullptr}, self_key_value_{nullptr}, self_proj_{nullptr};
};
TORCH_MODULE(AttentionLayer);

}  // namespace exprflow
