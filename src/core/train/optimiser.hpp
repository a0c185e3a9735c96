// The training loop's optimiser: AdamW with decoupled weight decay, computed
// as torch::optim::AdamW computes it (bias-corrected moments, the decay
// applied to the weights before the update). Two implementations behind one
// interface, chosen once when training starts:
//   - LibTorch's AdamW, for any device and dtype, and the reference;
//   - a fused CPU one that updates each float32 parameter in one pass over
//     (weight, gradient, first moment, second moment). LibTorch's makes about
//     nine passes, and on the CPU the step is memory bound: bench_optimiser
//     measured it at 23 ms of a ~80 ms state_mlp training step.
#pragma once

#include <memory>
#include <vector>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

struct AdamWSettings {
  double learning_rate = 1e-3;
  double weight_decay = 0.01;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

class Optimiser {
 public:
  virtual ~Optimiser() = default;
  virtual void set_learning_rate(double lr) = 0;
  virtual void zero_grad() = 0;
  // Parameters without a gradient are left as they are.
  virtual void step() = 0;
};

std::unique_ptr<Optimiser> make_libtorch_adamw(std::vector<Tensor> params, const AdamWSettings& settings);
// Throws std::invalid_argument unless every parameter is a contiguous float32 CPU tensor.
std::unique_ptr<Optimiser> make_fused_cpu_adamw(std::vector<Tensor> params, const AdamWSettings& settings);
// The fused one where it applies, else LibTorch's.
std::unique_ptr<Optimiser> make_adamw(std::vector<Tensor> params, const AdamWSettings& settings);

}  // namespace exprflow
