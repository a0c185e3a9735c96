// What the CUDA kernels (kernels/cuda/launchers.hpp) need from LibTorch: the
// stream to launch on. The only file of the core that includes a CUDA header
// of LibTorch's, and only where the core is built with CUDA.
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// Whether this core was built with its CUDA kernels (EXPRFLOW_WITH_CUDA).
bool cuda_kernels_built();

// LibTorch's current CUDA stream (a cudaStream_t) on the device of `on`, which
// must be that current device (this package uses one GPU, "cuda" = cuda:0).
// Throws std::logic_error in a build without CUDA.
void* current_cuda_stream(const Tensor& on);

}  // namespace exprflow
