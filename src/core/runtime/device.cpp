#include "runtime/device.hpp"

#include <torch/cuda.h>

#include <stdexcept>

namespace exprflow {

at::Device parse_device(const std::string& name) {
  if (name == "cpu") return at::Device(at::kCPU);
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      throw std::invalid_argument(
          "device = \"cuda\" needs a LibTorch built with CUDA and a visible GPU; this LibTorch "
          "sees none (see exprflow_info())");
    }
    return at::Device(at::kCUDA, 0);
  }
  throw std::invalid_argument("unknown device '" + name + "'; valid: 'cpu', 'cuda'");
}

}  // namespace exprflow
