#include "backbone/attention.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "backbone/edge_attention.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

Tensor attention_probabilities(const Tensor& q, const Tensor& k, const Tensor& bias) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor scores = matmul_at_precision(q, k.transpose(-2, -1)) * scale;  // (B, H, T, S)
  if (bias.defined()) scores = scores + bias;                            // (B, H, T, S)
  return at::softmax(scores, -1);                                        // (B, H, T, S)
}

Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) {
  return matmul_at_precision(attention_probabilities(q, k, bias), v);  // (B, H, T, Dh)
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias, Tensor* probabilities) {
  if (probabilities != nullptr) {
    *probabilities = attention_probabilities(q, k, bias);  // (B, H, T, S)
    return matmul_at_precision(*probabilities, v);         // (B, H, T, Dh)
  }
#if EXPRFLOW_HAVE_SDPA
  if (!bias.defined()) return at::scaled_dot_product_attention(q, k, v);  // (B, H, T, Dh)
  // A float attn_mask is added to the scores, which is what a bias is.
  return at::scaled_dot_product_attention(q, k, v, bias.to(q.dtype()));  // (B, H, T, Dh)
#else
  return attention_reference(q, k, v, bias);  // (B, H, T, Dh)
#endif
}

Tensor split_heads(const Tensor& x, int64_t heads) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  return x.view({B, T, heads, D / heads}).transpose(1, 2);  // (B, H, T, Dh)
}

Tensor merge_heads(const Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), Dh = x.size(3);
  return x.transpose(1, 2).reshape({B, T, H * Dh});  // (B, T, D)
}

void check_heads(int64_t dim, int64_t heads, const std::string& dim_name, const std::string& heads_name) {
  if (heads <= 0 || dim % heads != 0) {
    throw std::invalid_argument(dim_name + " " + std::to_string(dim) + " is not divisible by " + heads_name +
                                " " + std::to_string(heads));
  }
}

SelfAttentionImpl::SelfAttentionImpl(int64_t dim, int64_t heads, std::shared_ptr<EdgeIndex> graph)
    : heads_(heads), graph_(std::move(graph)) {
  check_heads(dim, heads, "token width", "the number of heads");
  qkv_ = register_module("qkv", Linear(dim, 3 * dim));
  proj_ = register_module("proj", Linear(dim, dim));
}

Tensor SelfAttentionImpl::forward(const Tensor& x, const Tensor& bias) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), Dh = D / heads_;
  Tensor qkv = qkv_->forward(x).view({B, T, 3, heads_, Dh}).permute({2, 0, 3, 1, 4});  // (3, B, H, T, Dh)
  Tensor out;                                                                            // (B, H, T, Dh)
  if (graph_) {
    if (bias.defined()) throw std::invalid_argument("attention along a gene graph takes no score bias");
    if (graph_->offsets.device() != x.device()) {
      EdgeIndex moved = *graph_;  // keeps what is not a tensor (cell_node)
      moved.offsets = moved.offsets.to(x.device());
      moved.sources = moved.sources.to(x.device());
      moved.targets = moved.targets.to(x.device());
      *graph_ = moved;
    }
    out = edge_attention(qkv[0], qkv[1], qkv[2], *graph_);
  } else {
    out = attention(qkv[0], qkv[1], qkv[2], bias);
  }
  return proj_->forward(merge_heads(out));                                               // (B, T, D)
}

}  // namespace exprflow
