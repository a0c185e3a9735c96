#include "sample/samplers.hpp"

#include <cmath>
#include <stdexcept>

#include "objective/ddpm.hpp"

namespace exprflow {

namespace {

Tensor clip(const Tensor& x0, const SamplerSettings& s) {
  if (!s.clip_low.defined()) return x0;
  return at::max(at::min(x0, s.clip_high.unsqueeze(0)), s.clip_low.unsqueeze(0));  // (B, G)
}

Tensor gaussian(at::IntArrayRef shape, at::Generator& generator, const at::Device& device) {
  // Drawn on the CPU so a seed gives the same cells on every device.
  return at::normal(0.0, 1.0, shape, generator, at::TensorOptions().dtype(at::kFloat)).to(device);
}

}  // namespace

Tensor sample(const Denoiser& network, const NoiseSchedule& schedule, const Tensor& condition,
              int64_t n_genes, const SamplerSettings& s, at::Generator& generator) {
  if (s.method != "ddim" && s.method != "ddpm") {
    throw std::invalid_argument("unknown sampler '" + s.method + "'; valid: 'ddim', 'ddpm'");
  }
  const int64_t B = condition.size(0);
  const at::Device device = condition.device();
  const std::vector<int64_t> kept = timestep_subsequence(schedule.timesteps(), s.steps);
  const NoiseSchedule steps = schedule.respaced(kept);
  auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);

  Tensor x = gaussian({B, n_genes}, generator, device);  // (B, G) x_T
  for (int64_t i = steps.timesteps() - 1; i >= 0; --i) {
    Tensor t_model = at::full({B}, kept[i], long_opts);  // original timestep for the network
    Tensor t_step = at::full({B}, i, long_opts);         // index into the respaced schedule
    NoiseSchedule::Coefficients c = steps.at(t_step);
    GeneOutput out = network(x, t_model, condition);
    Tensor x0 = clip(predict_x0_from_eps(c, x, eps_from_output(c, x, out.value, s.prediction)), s);  // (B, G)

    if (s.method == "ddpm") {
      Tensor mean = posterior_mean(c, x0, x);
      if (i == 0) {
        x = mean;
        break;
      }
      Tensor log_var = s.learned_variance ? learned_log_variance(c, out.scale)
                                          : at::log(at::full_like(mean, steps.posterior_variance(i)));
      x = mean + at::exp(0.5 * log_var) * gaussian({B, n_genes}, generator, device);
    } else {
      // DDIM (Song et al. 2021), with eps re-derived from the clipped x_0.
      const double ab = steps.alpha_bar(i), ab_prev = steps.alpha_bar_prev(i);
      Tensor eps = (x - std::sqrt(ab) * x0) / std::sqrt(1 - ab);
      const double sigma =
          s.eta * std::sqrt((1 - ab_prev) / (1 - ab)) * std::sqrt(1 - ab / ab_prev);
      x = std::sqrt(ab_prev) * x0 + std::sqrt(std::max(1 - ab_prev - sigma * sigma, 0.0)) * eps;
      if (sigma > 0 && i > 0) x = x + sigma * gaussian({B, n_genes}, generator, device);
    }
  }
  return x;
}

Denoiser with_guidance(Denoiser network, int64_t null_condition, double scale) {
  if (scale == 1.0) return network;
  return [network, null_condition, scale](const Tensor& x_t, const Tensor& t, const Tensor& condition) {
    // One batched call for both branches: (2B, G).
    Tensor null_levels = at::full_like(condition, null_condition);
    GeneOutput both = network(at::cat({x_t, x_t}), at::cat({t, t}), at::cat({condition, null_levels}));
    std::vector<Tensor> value = both.value.chunk(2, 0), scale_head = both.scale.chunk(2, 0);
    return GeneOutput{value[1] + scale * (value[0] - value[1]), scale_head[0]};
  };
}

}  // namespace exprflow
