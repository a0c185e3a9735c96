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

  // Cross-attention to a memory that is affine in one number per token:
  // memory[b, s] = base[s] + coefficient[b, s] * direction (gene identity +
  // expression value times a shared value vector, tokenize/gene_value_tokens.hpp),
  // without building the (B, S, D) memory. Its LayerNorm is computed from
  // three numbers per token and its key / value projection is linear, so the
  // scores and outputs need only (B, H, T, S) weights and one (S, 2D)
  // projection of the base: O(B H T S) instead of O(B S D^2). The same
  // function as forward(x, base + coefficient (x) direction), which the tests
  // compare it against. x: (1 or B, T, D); base: (S, D); direction: (D);
  // coefficient: (B, S). -> (B, T, D). Cross layers without query
  // self-attention only.
  Tensor forward_affine_memory(const Tensor& x, const Tensor& base, const Tensor& direction,
                               const Tensor& coefficient);

  // forward(x, memory) read out by a linear map w (K, D): forward(x, memory)
  // w^T -> (B, T, K), without the layer's (B, T, D) output. The MLP's second
  // product and the read-out fold into one (K, hidden) matrix w W_out, so
  // the widest product of the layer is not computed at all. The plain path
  // where that does not hold: dropout in training, query self-attention.
  Tensor forward_read_out(const Tensor& x, const Tensor& memory, const Tensor& readout);

  int64_t heads() const { return heads_; }

 private:
  // Multi-head attention of h (B, T, D) over m (B, S, D) -> (B, T, D), before the output projection.
  Tensor attend(const Tensor& h, const Tensor& m, Linear& query, Linear& key_value,
                const Tensor& bias, Tensor* weights);
  // y + Dropout(Proj(attended)): the attention block's residual.
  Tensor project(const Tensor& y, const Tensor& attended);
  // z + Dropout(MLP(LN(z))): the MLP block.
  Tensor mlp_block(const Tensor& z);

  int64_t heads_;
  double dropout_;
  bool cross_, query_self_;
  torch::nn::LayerNorm norm_{nullptr}, norm_memory_{nullptr}, norm_mlp_{nullptr}, norm_self_{nullptr};
  Linear query_{nullptr}, key_value_{nullptr}, proj_{nullptr}, mlp_in_{nullptr}, mlp_out_{nullptr};
  Linear self_query_{nullptr}, self_key_value_{nullptr}, self_proj_{nullptr};
};
TORCH_MODULE(AttentionLayer);

}  // namespace exprflow
