// Multi-head attention, the one implementation of every model family: the
// generative DiT blocks (SelfAttention below) and the connectivity models'
// self- and cross-attention layers (connectivity/attention_layer.hpp).
//
// attention() takes an optional additive score bias (ALiBi, see
// backbone/alibi.hpp). It uses at::scaled_dot_product_attention where
// LibTorch has it (>= 2.0, EXPRFLOW_HAVE_SDPA; flash and memory-efficient
// kernels on CUDA; a bias travels as its float attn_mask, which SDPA adds to
// the scores) and the plain softmax(q k^T / sqrt(Dh) + bias) v otherwise.
// attention_reference() is that plain version, which the tests compare the
// fast path against. SDPA never hands out its weights, so a caller that wants
// them (attention maps) gets the plain path through `probabilities`.
#pragma once

#include <memory>
#include <string>

#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

// Shapes: q (B, H, T, Dh); k, v (B, H, S, Dh); bias broadcastable to
// (B, H, T, S), or undefined for none.

// The weights softmax(q k^T / sqrt(Dh) + bias): (B, H, T, S).
Tensor attention_probabilities(const Tensor& q, const Tensor& k, const Tensor& bias = Tensor());

// Plain attention: attention_probabilities(q, k, bias) v -> (B, H, T, Dh).
Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias = Tensor());

// The fastest attention this LibTorch offers; same contract as the reference.
// probabilities, when non-null, receives the weights (B, H, T, S) and the
// output is computed from them (the plain path).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias = Tensor(),
                 Tensor* probabilities = nullptr);

// (B, T, H * Dh) -> (B, H, T, Dh) and back: the head layout attention() takes.
Tensor split_heads(const Tensor& x, int64_t heads);
Tensor merge_heads(const Tensor& x);

// Throws std::invalid_argument unless `heads` >= 1 divides `dim`; the message
// names the two settings as the caller calls them.
void check_heads(int64_t dim, int64_t heads, const std::string& dim_name, const std::string& heads_name);

struct EdgeIndex;

// Self-attention of the DiT blocks: one fused q/k/v projection, no bias.
// With a gene graph, token i attends only to its sources in the graph
// (backbone/edge_attention.hpp); the graph is shared by every block and moved
// to the tokens' device on first use.
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t dim, int64_t heads, std::shared_ptr<EdgeIndex> graph = nullptr);
  // bias: an additive score bias broadcastable to (B, H, T, T) (a learned
  // token graph); not with a gene graph.
  Tensor forward(const Tensor& x, const Tensor& bias = Tensor());  // (B, T, D) -> (B, T, D)

 private:
  int64_t heads_;
  std::shared_ptr<EdgeIndex> graph_;
  Linear qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(SelfAttention);

}  // namespace exprflow
