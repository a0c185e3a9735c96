// The core's Linear layer: LibTorch's Linear (same options, same `weight` and
// `bias` parameters, so model files and LoRA see no difference) whose matrix
// product follows this thread's matmul precision (runtime/matmul_precision.hpp):
// in bfloat16 on the CPU while a MatmulPrecisionGuard says so, in float otherwise.
#pragma once

#include "exprflow/torch_prelude.hpp"
#include "runtime/matmul_precision.hpp"

namespace exprflow {

class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  Tensor forward(const Tensor& input);  // (..., in) -> (..., out)
};
TORCH_MODULE(Linear);

// at::matmul(a, b) at this thread's matmul precision: for two float CPU
// tensors under "bfloat16", both are cast, multiplied with float
// accumulation and the product returned as float.
Tensor matmul_at_precision(const Tensor& a, const Tensor& b);

// Whether a product of these float tensors would run in bfloat16 now.
bool runs_in_bfloat16(const Tensor& a);

}  // namespace exprflow
