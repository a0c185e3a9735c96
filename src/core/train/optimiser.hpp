// The training loop's optimiser: AdamW with decoupled weight decay, computed
// as torch::optim::AdamW computes it (bias-corrected moments, the decay
// applied to the weights before the update). Three implementations behind
// one interface, chosen once when training starts:
//   - LibTorch's AdamW, for any device and dtype, and the reference;
//   - a fused CPU one that updates each float32 parameter in one pass over
//     (weight, gradient, first moment, second moment). LibTorch's makes about
//     nine passes, and on the CPU the step is memory bound: bench_optimiser
//     measured it at 23 ms of a ~80 ms state_mlp training step;
//   - a multi-tensor one (at::_foreach_* ops, LibTorch's arithmetic) for
//     parameters on a GPU, where LibTorch's launches about ten kernels per
//     parameter and a small model's step is bound by launches.
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

// What an optimiser carries from step to step, per parameter in the order it
// was given them: the number of updates it made (0: none yet, its moments
// are zeros) and AdamW's first and second moments. A checkpoint stores it so
// that a resumed run takes exactly the steps an uninterrupted one would.
struct OptimiserState {
  std::vector<int64_t> steps;
  std::vector<Tensor> exp_avg, exp_avg_sq;  // CPU copies, each shaped like its parameter
};

class Optimiser {
 public:
  virtual ~Optimiser() = default;
  virtual void set_learning_rate(double lr) = 0;
  virtual void zero_grad() = 0;
  // Parameters without a gradient are left as they are.
  virtual void step() = 0;
  virtual OptimiserState state() const = 0;
  // Throws std::invalid_argument unless `state` has this optimiser's parameter shapes.
  virtual void load_state(const OptimiserState& state) = 0;
};

std::unique_ptr<Optimiser> make_libtorch_adamw(std::vector<Tensor> params, const AdamWSettings& settings);
// Throws std::invalid_argument unless every parameter is a contiguous float32 CPU tensor.
std::unique_ptr<Optimiser> make_fused_cpu_adamw(std::vector<Tensor> params, const AdamWSettings& settings);
// Any device and dtype; the same bits as LibTorch's on the CPU.
std::unique_ptr<Optimiser> make_foreach_adamw(std::vector<Tensor> params, const AdamWSettings& settings);
// The fused one where it applies (float32 CPU), the multi-tensor one on a GPU, else LibTorch's.
std::unique_ptr<Optimiser> make_adamw(std::vector<Tensor> params, const AdamWSettings& settings);

}  // namespace exprflow
