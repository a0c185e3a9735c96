// ALiBi (Press et al. 2022): attention biased against distant key positions,
// -slope_h * |q_pos - k_pos| added to head h's scores, with fixed geometric
// slopes, so a model prefers nearby tokens without learned positions. The
// connectivity cross-attention model biases by position in the gene order.
// The bias goes to attention() (backbone/attention.hpp).
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// Slopes 2^(-8 (h + 1) / H), h = 0..H-1: (H,).
Tensor alibi_slopes(int64_t heads);

// The bias over positions: q_positions (T,), k_positions (S,) as float; a
// query position that is NaN (a CLS token) gets no bias. -> (H, T, S)
Tensor alibi_bias(int64_t heads, const Tensor& q_positions, const Tensor& k_positions);

}  // namespace exprflow
