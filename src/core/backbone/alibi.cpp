#include "backbone/alibi.hpp"

#include <stdexcept>

namespace exprflow {

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
