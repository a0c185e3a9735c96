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

 private:
  // The weight's bfloat16 copy, kept while no gradient is being recorded
  // (sampling, embedding) and the weight is unchanged (same storage, same
  // version counter), so that a sampler's 50 steps cast it once instead of
  // once per step. Dropped as soon as a forward records gradients.
  Tensor bfloat16_weight();
  Tensor cached_weight_;
  const void* cached_data_ = nullptr;
  int64_t cached_version_ = -1;
};
TORCH_MODULE(Linear);

// at::matmul(a, b) at this thread's matmul precision: for two float CPU
// tensors under "bfloat16", both are cast, multiplied with float
// accumulation and the product returned as float.
Tensor matmul_at_precision(const Tensor& a, const Tensor& b);

}  // namespace exprflow
