// The narrow set of LibTorch headers the core's modules use.
//
// Included (and precompiled, see CMakeLists.txt) instead of <torch/torch.h>:
// that umbrella header pulls in data loaders, JIT and serialisation for
// every translation unit and costs ~20 s and 1 GB of compiler memory each.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/init.h>
#include <torch/version.h>

// LibTorch 2.0 added at::scaled_dot_product_attention (flash / memory-efficient
// kernels on CUDA). Older versions fall back to the plain implementation.
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
#define EXPRFLOW_HAVE_SDPA 1
#else
#define EXPRFLOW_HAVE_SDPA 0
#endif

namespace exprflow {
using torch::Tensor;
}  // namespace exprflow
