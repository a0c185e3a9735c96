#include "train/denoiser_task.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "sample/samplers.hpp"

namespace exprflow {

namespace {

Denoiser forward_of(ComposedNetworkImpl& net) {
  return [&net](const Tensor& x_t, const Tensor& t, const Covariates& c) { return net.forward(x_t, t, c); };
}

}  // namespace

double fixed_noise_mean(const std::vector<int>& cells, long batch_size, uint64_t seed,
                        const std::function<double(const std::vector<int>& part, at::Generator& generator)>& batch_sum) {
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed + 7919);
  double total = 0;
  for (size_t lo = 0; lo < cells.size(); lo += batch_size) {
    std::vector<int> part(cells.begin() + lo, cells.begin() + std::min(cells.size(), lo + batch_size));
    total += batch_sum(part, generator);
  }
  return total / cells.size();
}

TrainingTask denoiser_task(ComposedNetworkImpl& network, ComposedNetworkImpl& ema, const Objective& objective,
                           const CleanData& data, double cfg_dropout, const TrainerSettings& settings) {
  TrainingTask task;
  task.module = &network;
  task.ema = &ema;
  const Denoiser forward = forward_of(network);
  task.batch_loss = [forward, &objective, &data, cfg_dropout](const std::vector<int>& cells,
                                                              at::Generator& generator) {
    CleanCells clean = data(cells, generator);
    return objective.loss(forward, clean.x0, drop_covariates(clean.covariates, cfg_dropout, generator), generator)
        .total;
  };
  task.validation_loss = [forward, &objective, &data, settings](const std::vector<int>& cells) {
    return fixed_noise_mean(cells, settings.batch_size, settings.seed,
                            [&](const std::vector<int>& part, at::Generator& generator) {
                              CleanCells clean = data(part, generator);
                              return objective.loss(forward, clean.x0, clean.covariates, generator)
                                         .total.item<double>() * part.size();
                            });
  };
  return task;
}

Denoiser guided_sampler(ComposedNetworkImpl& ema, const GuidanceScales& scales, bool conditional) {
  if (!conditional) return forward_of(ema);
  return with_covariate_guidance(forward_of(ema), scales);
}

}  // namespace exprflow
