#include "connectivity/biased_attention.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "backbone/attention.hpp"

namespace exprflow {

Tensor attention_probabilities(const Tensor& q, const Tensor& k, const Tensor& bias) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, T, S)
  if (bias.defined()) scores = scores + bias;
  return at::softmax(scores, -1);  // (B, H, T, S)
}

Tensor biased_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) {
  return at::matmul(attention_probabilities(q, k, bias), v);  // (B, H, T, Dh)
}

Tensor biased_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) {
  if (!bias.defined()) return attention(q, k, v);
#if EXPRFLOW_HAVE_SDPA
  return at::scaled_dot_product_attention(q, k, v, bias.to(q.dtype()));  // (B, H, T, Dh)
#else
  return biased_attention_reference(q, k, v, bias);
#endif
}

Tensor alibi_slopes(int64_t heads) {
  if (heads < 1) throw std::invalid_argument("ALiBi needs at least one head");
  Tensor h = at::arange(1, heads + 1, at::TensorOptions().dtype(at::kDouble));  // (H,)
  return at::pow(2.0, h * (-8.0 / static_cast<double>(heads))).to(at::kFloat);   // (H,)
}

Tensor alibi_bias(int64_t heads, const Tensor& q_positions, const Tensor& k_positions) {
  Tensor distance = (q_positions.unsqueeze(1) - k_positions.unsqueeze(0)).abs();  // (T, S)
  // CLS queries have no position: NaN distances become no bias.
  distance = at::where(at::isnan(distance), at::zeros_like(distance), distance);
  Tensor slopes = alibi_slopes(heads).to(distance.device());  // (H,)
  return -slopes.view({heads, 1, 1}) * distance.unsqueeze(0);  // (H, T, S)
}

}  // namespace exprflow
