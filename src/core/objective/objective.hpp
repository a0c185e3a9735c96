// The objective stage's contract: how clean data is noised, what the network
// predicts, and the loss that trains it.
//
// Every objective noises along a Gaussian path in continuous time t in [0, 1]:
//
//   x_t = alpha(t) x_0 + sigma(t) eps,   alpha(0) = 1, sigma(0) = 0 (clean)
//
// DDPM is the variance-preserving path of its discrete schedule, rectified
// flow the straight line alpha = 1 - t, sigma = t. An objective turns the
// network's raw output at (x_t, t) into predictions of x_0 and eps; the
// samplers (sample/samplers.hpp) need nothing else, so every sampler works
// with every objective.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "models/denoising_network.hpp"

namespace exprflow {

struct Prediction {
  Tensor x0;     // (B, G)
  Tensor eps;    // (B, G)
  Tensor scale;  // (B, G) the network's variance head, or undefined
};

struct LossOutput {
  Tensor total;                         // scalar: what the optimiser minimises
  std::map<std::string, Tensor> parts;  // scalars, detached: the terms, for reporting
};

class Objective {
 public:
  virtual ~Objective() = default;
  virtual std::string name() const = 0;

  // A training loss on clean data x0 (B, G) with its covariates; time and
  // noise come from `generator`.
  virtual LossOutput loss(const Denoiser& network, const Tensor& x0, const Covariates& covariates,
                          at::Generator& generator) const = 0;

  virtual double alpha(double t) const = 0;
  virtual double sigma(double t) const = 0;

  // Predictions implied by the network's output at (x_t, t): (B, G) each.
  virtual Prediction predict(const GeneOutput& output, const Tensor& x_t, double t) const = 0;

  // Sampling times for `steps` steps, from the noisiest (1) down to 0
  // (clean), steps + 1 points.
  virtual std::vector<double> time_grid(int64_t steps) const = 0;
  virtual std::string default_sampler() const = 0;
  // The network's scale head is the reverse-process variance (DDPM ancestral).
  virtual bool learned_variance() const { return false; }
  // How many gene-space heads the decoder needs (value [+ scale]).
  virtual int64_t output_heads() const { return learned_variance() ? 2 : 1; }

  // Early-stopping patience (epochs) when the caller sets none; 0 = off.
  virtual long default_patience() const { return 10; }

  // Per-gene box (G,) for x_0 predictions, as the samplers clip them.
  virtual void set_x0_bounds(Tensor low, Tensor high) {}
};

}  // namespace exprflow
