#include "backbone/attention.hpp"

#include <cmath>
#include <stdexcept>

namespace exprflow {

Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, T, S)
  return at::matmul(at::softmax(scores, -1), v);               // (B, H, T, Dh)
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v) {
#if EXPRFLOW_HAVE_SDPA
  return at::scaled_dot_product_attention(q, k, v);
#else
  return attention_reference(q, k, v);
#endif
}

SelfAttentionImpl::SelfAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
  if (heads <= 0 || dim % heads != 0) {
    throw std::invalid_argument("token width " + std::to_string(dim) +
                                " is not divisible by the number of heads " +
                                std::to_string(heads));
  }
  qkv_ = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj_ = register_module("proj", torch::nn::Linear(dim, dim));
}

Tensor SelfAttentionImpl::forward(const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), Dh = D / heads_;
  Tensor qkv = qkv_->forward(x).view({B, T, 3, heads_, Dh}).permute({2, 0, 3, 1, 4});  // (3, B, H, T, Dh)
  Tensor out = attention(qkv[0], qkv[1], qkv[2]);                                        // (B, H, T, Dh)
  return proj_->forward(out.transpose(1, 2).reshape({B, T, D}));                         // (B, T, D)
}

}  // namespace exprflow
