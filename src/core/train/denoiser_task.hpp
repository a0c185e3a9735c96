// The training task of every denoising network (gene-space models and the
// latent stage of latent models): the objective's loss on clean data with
// classifier-free-guidance dropout of the covariates, and a held-out loss
// with fixed noise. What differs between models is only where the clean data
// of a set of cells comes from, which the caller passes as a function.
#pragma once

#include <functional>
#include <vector>

#include "data/cell_batch.hpp"
#include "models/composed_network.hpp"
#include "objective/objective.hpp"
#include "sample/guidance.hpp"
#include "train/trainer.hpp"

namespace exprflow {

struct CleanCells {
  Tensor x0;             // (B, D) what the network learns to generate
  Covariates covariates;  // their codes
};
// The clean data of `cells`; may draw with `generator` (e.g. codes from a posterior).
using CleanData = std::function<CleanCells(const std::vector<int>& cells, at::Generator& generator)>;

// `network` is trained, `ema` averages it; both must outlive the task, as must
// `objective` and `data`.
TrainingTask denoiser_task(ComposedNetworkImpl& network, ComposedNetworkImpl& ema, const Objective& objective,
                           const CleanData& data, double cfg_dropout, const TrainerSettings& settings);

// The mean over `cells` of a loss summed over each batch of at most
// batch_size cells, with one generator seeded from `seed` anew for every call:
// the same noise every epoch, so validation losses are comparable.
double fixed_noise_mean(const std::vector<int>& cells, long batch_size, uint64_t seed,
                        const std::function<double(const std::vector<int>& part, at::Generator& generator)>& batch_sum);

// The EMA network for sampling, with classifier-free guidance (one scale or
// one per covariate, sample/guidance.hpp) when the model has covariates to
// guide by.
Denoiser guided_sampler(ComposedNetworkImpl& ema, const GuidanceScales& scales, bool conditional);

}  // namespace exprflow
