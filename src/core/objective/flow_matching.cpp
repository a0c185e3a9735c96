#include "objective/flow_matching.hpp"

#include <stdexcept>

#include "data/covariate_groups.hpp"
#include "objective/ot_pairing.hpp"

namespace exprflow {

FlowMatchingObjective::FlowMatchingObjective(std::string time_distribution, double logit_mean, double logit_sd,
                                             bool ot_pairing, bool shared_time)
    : time_distribution_(std::move(time_distribution)),
      logit_mean_(logit_mean),
      logit_sd_(logit_sd),
      ot_pairing_(ot_pairing),
      shared_time_(shared_time) {
  if (time_distribution_ != "uniform" && time_distribution_ != "logit_normal") {
    throw std::invalid_argument("unknown time_distribution '" + time_distribution_ +
                                "'; valid: 'uniform', 'logit_normal'");
  }
  if (!(logit_sd_ > 0)) throw std::invalid_argument("setting 'logit_sd' must be positive");
}

Tensor FlowMatchingObjective::draw_times(int64_t n, at::Generator& generator) const {
  auto opts = at::TensorOptions().dtype(at::kFloat);
  if (time_distribution_ == "uniform") return at::rand({n}, generator, opts);  // (B,)
  return at::sigmoid(at::normal(logit_mean_, logit_sd_, {n}, generator, opts));  // (B,)
}

LossOutput FlowMatchingObjective::loss(const Denoiser& network, const Tensor& x0, const Covariates& covariates,
                                       at::Generator& generator) const {
  Tensor t = draw_times(x0.size(0), generator).to(x0.device());                       // (B,)
  if (shared_time_) t = shared_within_groups(t, covariate_groups(covariates, x0.size(0)));
  Tensor noise = at::normal(0.0, 1.0, x0.sizes(), generator, x0.options().device(at::kCPU))
                     .to(x0.device());                                                 // (B, G)
  if (ot_pairing_) noise = pair_noise(x0, noise, covariates);
  return loss_at(network, x0, covariates, t, noise);
}

LossOutput FlowMatchingObjective::loss_at(const Denoiser& network, const Tensor& x0, const Covariates& covariates,
                                          const Tensor& t, const Tensor& noise) const {
  Tensor tt = t.unsqueeze(1);                    // (B, 1)
  Tensor x_t = (1 - tt) * x0 + tt * noise;       // (B, G)
  GeneOutput out = network(x_t, t, covariates);
  Tensor mse = (out.value - (noise - x0)).pow(2).mean();
  return {mse, {{"mse", mse.detach()}}};
}

Prediction FlowMatchingObjective::predict(const GeneOutput& output, const Tensor& x_t, double t) const {
  const Tensor& v = output.value;  // (B, G)
  return {x_t - t * v, x_t + (1 - t) * v, output.scale};
}

std::vector<double> FlowMatchingObjective::time_grid(int64_t steps) const {
  if (steps < 1) throw std::invalid_argument("the number of sampling steps must be at least 1");
  std::vector<double> grid(steps + 1);
  for (int64_t i = 0; i <= steps; ++i) grid[i] = 1.0 - static_cast<double>(i) / steps;
  return grid;
}

}  // namespace exprflow
