// Multi-head self-attention over a token sequence.
//
// Uses at::scaled_dot_product_attention where LibTorch has it (>= 2.0; flash
// and memory-efficient kernels on CUDA) and the plain softmax(QK^T/sqrt(d))V
// otherwise. attention_reference() is that plain version, kept for tests.
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// q, k, v: (B, H, T, Dh) -> (B, H, T, Dh). Plain implementation.
Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v);

// The fastest attention this LibTorch offers; same contract as the reference.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v);

class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t dim, int64_t heads);
  Tensor forward(const Tensor& x);  // (B, T, D) -> (B, T, D)

 private:
  int64_t heads_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(SelfAttention);

}  // namespace exprflow
