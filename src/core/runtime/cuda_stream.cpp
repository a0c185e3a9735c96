#include "runtime/cuda_stream.hpp"

#include <stdexcept>
#include <string>

#ifdef EXPRFLOW_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace exprflow {

bool cuda_kernels_built() {
#ifdef EXPRFLOW_WITH_CUDA
  return true;
#else
  return false;
#endif
}

void* current_cuda_stream(const Tensor& on) {
#ifdef EXPRFLOW_WITH_CUDA
  if (!on.is_cuda()) throw std::invalid_argument("current_cuda_stream: the tensor is not on a CUDA device");
  if (on.get_device() != c10::cuda::current_device()) {
    throw std::invalid_argument("the CUDA kernels launch on the current device, cuda:" +
                                std::to_string(c10::cuda::current_device()) + ", not on cuda:" +
                                std::to_string(on.get_device()));
  }
  return c10::cuda::getCurrentCUDAStream(on.get_device()).stream();
#else
  throw std::logic_error("current_cuda_stream: this core was built without CUDA");
#endif
}

}  // namespace exprflow
