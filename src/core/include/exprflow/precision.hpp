#pragma once

// Whether this CPU multiplies bfloat16 matrices faster than float ones: it
// has AVX-512-BF16 or AMX tiles and LibTorch was built with oneDNN. Elsewhere
// LibTorch's bfloat16 products are emulated and slower than sgemm, so
// training with precision "bfloat16" (runtime/matmul_precision.hpp) only pays here.

namespace exprflow {

bool bfloat16_matmul_is_fast();

}  // namespace exprflow
