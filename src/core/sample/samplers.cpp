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

namespace {

void check_method(const SamplerSettings& s) {
  if (s.method != "ddim" && s.method != "ddpm") {
    throw std::invalid_argument("unknown sampler '" + s.method + "'; valid: 'ddim', 'ddpm'");
  }
}

// The reverse process from x at respaced index `top` down to 0. `kept` maps
// respaced indices to the network's original timesteps.
Tensor reverse_process(const Denoiser& network, const NoiseSchedule& steps, const std::vector<int64_t>& kept,
                       Tensor x, int64_t top, const Tensor& condition, const SamplerSettings& s,
                       at::Generator& generator) {
  const int64_t B = x.size(0), n_genes = x.size(1);
  const at::Device device = x.device();
  auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  for (int64_t i = top; i >= 0; --i) {
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

}  // namespace

Tensor sample(const Denoiser& network, const NoiseSchedule& schedule, const Tensor& condition,
              int64_t n_genes, const SamplerSettings& s, at::Generator& generator) {
  check_method(s);
  const std::vector<int64_t> kept = timestep_subsequence(schedule.timesteps(), s.steps);
  const NoiseSchedule steps = schedule.respaced(kept);
  Tensor x = gaussian({condition.size(0), n_genes}, generator, condition.device());  // (B, G) x_T
  return reverse_process(network, steps, kept, x, steps.timesteps() - 1, condition, s, generator);
}

Tensor renoise_and_denoise(const Denoiser& network, const NoiseSchedule& schedule, const Tensor& x0,
                           const Tensor& condition, double noise_level, const SamplerSettings& s,
                           at::Generator& generator) {
  check_method(s);
  if (!(noise_level >= 0 && noise_level <= 1)) {
    throw std::invalid_argument("noise_level must be in [0, 1]");
  }
  const std::vector<int64_t> kept = timestep_subsequence(schedule.timesteps(), s.steps);
  const NoiseSchedule steps = schedule.respaced(kept);
  const double t_max = noise_level * static_cast<double>(schedule.timesteps() - 1);
  int64_t top = -1;
  for (int64_t i = 0; i < static_cast<int64_t>(kept.size()); ++i) {
    if (static_cast<double>(kept[i]) <= t_max + 1e-9) top = i;
  }
  if (noise_level == 0 || top < 0) return x0;
  const double ab = steps.alpha_bar(top);
  Tensor noise = gaussian({x0.size(0), x0.size(1)}, generator, x0.device());  // (B, G)
  Tensor x = std::sqrt(ab) * x0 + std::sqrt(1 - ab) * noise;                    // (B, G) x_t
  return reverse_process(network, steps, kept, x, top, condition, s, generator);
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
