// Exponential moving average of a module's parameters (the weights samplers
// use). The decay warms up as min(decay, (1 + step) / (10 + step)), so a short
// run's average is not dominated by the random initialisation.
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class ParameterEma {
 public:
  ParameterEma(torch::nn::Module& source, torch::nn::Module& average, double decay);
  void update(long step);        // average <- d * average + (1 - d) * source
  void copy_source_to_average(); // average <- source

 private:
  std::vector<Tensor> source_, average_;
  double decay_;
};

// Deep copies of parameter values (for best-epoch snapshots), and back.
std::vector<Tensor> snapshot_parameters(torch::nn::Module& module);
void restore_parameters(torch::nn::Module& module, const std::vector<Tensor>& values);

// Readies a module to hold the average of another: on `device`, in eval mode,
// with no gradients (the trainer writes it, inference reads it).
void prepare_average(torch::nn::Module& average, const at::Device& device);

}  // namespace exprflow
