// Multi-head attention with an additive score bias (ALiBi) and access to the
// attention weights (attention maps of a region pair).
//
// backbone/attention.hpp covers the unbiased case. With a bias, LibTorch >= 2
// passes it to at::scaled_dot_product_attention as a float attn_mask (added
// to the scores); older versions use the plain reference below, which the
// tests compare the fast path against.
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// q: (B, H, T, Dh), k, v: (B, H, S, Dh), bias: broadcastable to (B, H, T, S)
// -> (B, H, T, Dh). softmax(q k^T / sqrt(Dh) + bias) v, plain.
Tensor biased_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias);

// Same contract; the fastest this LibTorch offers. An undefined bias means none.
Tensor biased_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias);

// The weights softmax(q k^T / sqrt(Dh) + bias): (B, H, T, S). Bias may be undefined.
Tensor attention_probabilities(const Tensor& q, const Tensor& k, const Tensor& bias);

// ALiBi slopes 2^(-8 (h + 1) / H), h = 0..H-1 (Press et al. 2022): (H,).
Tensor alibi_slopes(int64_t heads);

// ALiBi bias -slope_h * |q_pos - k_pos| over positions: q_positions (T,),
// k_positions (S,) as float; a query position that is NaN (a CLS token) gets
// no bias. -> (H, T, S).
Tensor alibi_bias(int64_t heads, const Tensor& q_positions, const Tensor& k_positions);

}  // namespace exprflow
