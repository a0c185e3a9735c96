// DiT transformer block with adaLN-Zero conditioning (Peebles & Xie 2023).
//
// The conditioning vector c (timestep + condition) regresses a shift, a scale
// and a gate for both the attention and the MLP branch. The regression layer
// starts at zero, so every gate is zero and a fresh block is the identity:
// a deep stack trains as stably as a shallow one.
#pragma once

#include "backbone/attention.hpp"
#include "backbone/condition_attention.hpp"
#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

// x * (1 + scale) + shift with (B, D) modulation broadcast over tokens, or
// (B, T, D) modulation per token (cells as tokens: each cell its own c).
Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale);

class DiTBlockImpl : public torch::nn::Module {
 public:
  // graph: attention along a gene graph's edges only (see SelfAttentionImpl).
  // cross_attention: a cross-attention branch to condition tokens after the
  // self-attention (backbone/condition_attention.hpp).
  DiTBlockImpl(int64_t dim, int64_t heads, double mlp_ratio = 4.0, std::shared_ptr<EdgeIndex> graph = nullptr,
               bool cross_attention = false);
  // bias: additive attention score bias (SelfAttentionImpl), or undefined.
  // c: (B, D), or (B, T, D) per token. condition_tokens: (B, C, D) for a
  // block with cross-attention (which needs them), else undefined.
  Tensor forward(const Tensor& x, const Tensor& c, const Tensor& bias = Tensor(),
                 const Tensor& condition_tokens = Tensor());  // (B, T, D) -> (B, T, D)

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  SelfAttention attention_{nullptr};
  ConditionAttention cross_{nullptr};  // only with cross-attention
  Linear mlp_in_{nullptr}, mlp_out_{nullptr};
  Linear modulation_{nullptr};  // D -> 6D, zero-initialised
};
TORCH_MODULE(DiTBlock);

// Final adaLN (shift/scale, zero-initialised) + LayerNorm applied to the
// tokens before the decoder, as in DiT's final layer.
class FinalModulationImpl : public torch::nn::Module {
 public:
  explicit FinalModulationImpl(int64_t dim);
  Tensor forward(const Tensor& x, const Tensor& c);  // (B, T, D), (B, D) or (B, T, D) -> (B, T, D)

 private:
  torch::nn::LayerNorm norm_{nullptr};
  Linear modulation_{nullptr};  // D -> 2D, zero-initialised
};
TORCH_MODULE(FinalModulation);

}  // namespace exprflow
