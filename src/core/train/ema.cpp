#include "train/ema.hpp"

#include <algorithm>
#include <stdexcept>

namespace exprflow {

ParameterEma::ParameterEma(torch::nn::Module& source, torch::nn::Module& average, double decay)
    : source_(source.parameters()), average_(average.parameters()), decay_(decay) {
  if (source_.size() != average_.size()) {
    throw std::logic_error("EMA copy has a different parameter layout");
  }
}

void ParameterEma::update(long step) {
  const double d = std::min(decay_, (1.0 + step) / (10.0 + step));
  torch::NoGradGuard no_grad;
  // Every parameter at once (multi-tensor kernels on a GPU; on the CPU the
  // same per-tensor ops as a loop).
  at::_foreach_mul_(average_, d);
  at::_foreach_add_(average_, source_, 1 - d);
}

void ParameterEma::copy_source_to_average() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < source_.size(); ++i) average_[i].copy_(source_[i]);
}

std::vector<Tensor> snapshot_parameters(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<Tensor> copy;
  for (const Tensor& p : module.parameters()) copy.push_back(p.detach().clone());
  return copy;
}

void restore_parameters(torch::nn::Module& module, const std::vector<Tensor>& values) {
  torch::NoGradGuard no_grad;
  std::vector<Tensor> params = module.parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(values[i]);
}

void prepare_average(torch::nn::Module& average, const at::Device& device) {
  average.to(device);
  average.eval();
  for (Tensor& p : average.parameters()) p.set_requires_grad(false);
}

}  // namespace exprflow
