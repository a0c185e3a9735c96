#include "sample/samplers.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>

#include "exprflow/memory.hpp"
#include "models/named_registry.hpp"
#include "objective/ddpm.hpp"

namespace exprflow {

namespace {

Tensor gaussian(at::IntArrayRef shape, at::Generator& generator, const at::Device& device) {
  // Drawn on the CPU so a seed gives the same cells on every device.
  return at::normal(0.0, 1.0, shape, generator, at::TensorOptions().dtype(at::kFloat)).to(device);
}

// What one step needs: the network's (clipped) predictions at any (x, t).
struct StepContext {
  const Denoiser& network;
  const Objective& objective;
  const Covariates& covariates;
  const SamplerSettings& settings;

  Prediction predict(const Tensor& x, double t) const {
    Tensor time = at::full({x.size(0)}, t, x.options());  // (B,)
    Prediction p = objective.predict(network(x, time, covariates), x, t);
    if (settings.clip_low.defined()) {
      p.x0 = at::max(at::min(p.x0, settings.clip_high.unsqueeze(0)), settings.clip_low.unsqueeze(0));  // (B, G)
      // eps re-derived from the clipped x_0, so that both stay on the path through x.
      const double s = objective.sigma(t);
      if (s > 0) p.eps = (x - objective.alpha(t) * p.x0) / s;
    }
    return p;
  }
};

using Step = std::function<Tensor(const StepContext&, const Tensor& x, double t, double s, at::Generator&)>;

Tensor euler_step(const StepContext& ctx, const Tensor& x, double t, double s, at::Generator&) {
  const Objective& o = ctx.objective;
  Prediction p = ctx.predict(x, t);
  return x + (o.alpha(s) - o.alpha(t)) * p.x0 + (o.sigma(s) - o.sigma(t)) * p.eps;  // (B, G)
}

Tensor heun_step(const StepContext& ctx, const Tensor& x, double t, double s, at::Generator&) {
  const Objective& o = ctx.objective;
  Prediction p = ctx.predict(x, t);
  const double da = o.alpha(s) - o.alpha(t), ds = o.sigma(s) - o.sigma(t);
  Tensor euler = x + da * p.x0 + ds * p.eps;  // (B, G)
  if (s <= 0) return euler;
  Prediction q = ctx.predict(euler, s);
  return x + da * 0.5 * (p.x0 + q.x0) + ds * 0.5 * (p.eps + q.eps);  // (B, G)
}

// The Gaussian posterior q(x_s | x_t, x_0) of the path (Kingma et al. 2021):
// alpha_ts = alpha_t / alpha_s, var_ts = sigma_t^2 - alpha_ts^2 sigma_s^2.
struct Posterior {
  double coef_xt, coef_x0, variance, transition_variance;
};
Posterior posterior(const Objective& o, double t, double s) {
  const double at = o.alpha(t), as = o.alpha(s), st2 = std::pow(o.sigma(t), 2), ss2 = std::pow(o.sigma(s), 2);
  const double ats = at / as, var_ts = std::max(st2 - ats * ats * ss2, 1e-20);
  return {ats * ss2 / st2, as * var_ts / st2, var_ts * ss2 / st2, var_ts};
}

Tensor ddim_step(const StepContext& ctx, const Tensor& x, double t, double s, at::Generator& generator) {
  const Objective& o = ctx.objective;
  Prediction p = ctx.predict(x, t);
  if (s <= 0) return p.x0;
  const double sd = ctx.settings.eta * std::sqrt(posterior(o, t, s).variance);
  Tensor next = o.alpha(s) * p.x0 + std::sqrt(std::max(std::pow(o.sigma(s), 2) - sd * sd, 0.0)) * p.eps;
  if (sd > 0) next = next + sd * gaussian(x.sizes(), generator, x.device());
  return next;  // (B, G)
}

Tensor ddpm_step(const StepContext& ctx, const Tensor& x, double t, double s, at::Generator& generator) {
  const Objective& o = ctx.objective;
  Prediction p = ctx.predict(x, t);
  if (s <= 0) return p.x0;
  const Posterior q = posterior(o, t, s);
  Tensor mean = q.coef_xt * x + q.coef_x0 * p.x0;  // (B, G)
  Tensor log_var;
  if (o.learned_variance() && p.scale.defined()) {
    auto scalar = [&](double v) { return at::full({1, 1}, v, x.options()); };
    log_var = interpolate_log_variance(p.scale, scalar(std::log(q.transition_variance)), scalar(std::log(q.variance)));
  } else {
    log_var = at::full_like(mean, std::log(q.variance));
  }
  return mean + at::exp(0.5 * log_var) * gaussian(x.sizes(), generator, x.device());
}

const std::map<std::string, Step>& sampler_table() {
  static const std::map<std::string, Step> table = {
      {"ddim", ddim_step}, {"ddpm", ddpm_step}, {"euler", euler_step}, {"heun", heun_step}};
  return table;
}

}  // namespace

std::vector<std::string> sampler_names() { return registry_names(sampler_table()); }
void check_sampler(const std::string& method) { registry_entry(sampler_table(), method, "sampler"); }

SamplerSettings SamplerSettings::from(const Options& o, const Objective& objective, const Tensor& low,
                                      const Tensor& high) {
  SamplerSettings settings;
  settings.method = o.text("method");
  if (settings.method == "default") settings.method = objective.default_sampler();
  check_sampler(settings.method);
  settings.steps = o.integer("steps");
  settings.eta = o.number("eta");
  if (settings.steps < 1) throw std::invalid_argument("steps must be at least 1");
  if (o.flag("clip", true) && low.defined()) {
    settings.clip_low = low;
    settings.clip_high = high;
  }
  return settings;
}

Tensor run_sampler(const Denoiser& network, const Objective& objective, Tensor x, const std::vector<double>& grid,
                   size_t from, const Covariates& covariates, const SamplerSettings& settings,
                   at::Generator& generator) {
  const Step& step = registry_entry(sampler_table(), settings.method, "sampler");
  const StepContext ctx{network, objective, covariates, settings};
  const HeapHeldForRun heap_held;  // each step reuses the last one's pages
  for (size_t i = from; i + 1 < grid.size(); ++i) x = step(ctx, x, grid[i], grid[i + 1], generator);
  return x;  // (B, G)
}

Tensor sample(const Denoiser& network, const Objective& objective, const Covariates& covariates, int64_t n_cells,
              int64_t n_genes, const at::Device& device, const SamplerSettings& settings,
              at::Generator& generator) {
  check_sampler(settings.method);
  const std::vector<double> grid = objective.time_grid(settings.steps);
  Tensor x = gaussian({n_cells, n_genes}, generator, device);  // (B, G) at t = 1
  // A grid that starts below t = 1 (DDPM's last step) starts from x_T ~ N(0, I) all the same,
  // as DDPM does: alpha there is ~0.
  return run_sampler(network, objective, x, grid, 0, covariates, settings, generator);
}

Tensor renoise_and_denoise(const Denoiser& network, const Objective& objective, const Tensor& x0,
                           const Covariates& covariates, double noise_level, const SamplerSettings& settings,
                           at::Generator& generator) {
  check_sampler(settings.method);
  if (!(noise_level >= 0 && noise_level <= 1)) throw std::invalid_argument("noise_level must be in [0, 1]");
  const std::vector<double> grid = objective.time_grid(settings.steps);
  size_t from = 0;
  while (from < grid.size() && grid[from] > noise_level + 1e-9) ++from;
  if (noise_level == 0 || from + 1 >= grid.size()) return x0;
  const double t = grid[from];
  Tensor noise = gaussian(x0.sizes(), generator, x0.device());                 // (B, G)
  Tensor x = objective.alpha(t) * x0 + objective.sigma(t) * noise;             // (B, G) x_t
  return run_sampler(network, objective, x, grid, from, covariates, settings, generator);
}

Tensor invert_to_noise(const Denoiser& network, const Objective& objective, const Tensor& x0,
                       const Covariates& covariates, const SamplerSettings& settings) {
  const bool deterministic = settings.method == "euler" || settings.method == "heun" ||
                             (settings.method == "ddim" && settings.eta == 0);
  if (!deterministic) {
    throw std::invalid_argument("inverting cells to noise needs a deterministic sampler ('euler', 'heun', or 'ddim' "
                                "with eta = 0), not '" + settings.method + "'");
  }
  // Up the grid the same steps apply: each is a move along the path from t to
  // s given the predictions, whichever way s lies.
  const Step& step = registry_entry(sampler_table(), settings.method == "heun" ? "heun" : "euler", "sampler");
  std::vector<double> grid = objective.time_grid(settings.steps);
  std::reverse(grid.begin(), grid.end());  // 0 -> noisiest
  const StepContext ctx{network, objective, covariates, settings};
  at::Generator unused = at::detail::createCPUGenerator(0);
  Tensor x = x0;  // (B, G)
  for (size_t i = 0; i + 1 < grid.size(); ++i) x = step(ctx, x, grid[i], grid[i + 1], unused);
  return x;  // (B, G) at the grid's noisiest time
}

std::vector<std::string> transfer_modes() { return {"contrast", "joint", "marginal"}; }

void check_transfer_mode(const std::string& mode) {
  const std::vector<std::string> modes = transfer_modes();
  if (std::find(modes.begin(), modes.end(), mode) == modes.end()) {
    throw std::invalid_argument("transfer mode must be 'joint', 'marginal' or 'contrast' (or 'shift' for latent "
                                "models), got '" + mode + "'");
  }
}

std::pair<Covariates, Covariates> changed_covariates(const Covariates& from, const Covariates& to) {
  Covariates from_changed, to_changed;
  for (const auto& [name, codes] : from) {
    if (is_side_tensor(name)) {  // members and doses follow their covariate's code
      from_changed[name] = codes;
      to_changed[name] = to.at(name);
      continue;
    }
    const Tensor& target = to.at(name);                                     // (B,)
    const Tensor kept = codes == target;                                    // (B,)
    from_changed[name] = at::where(kept, at::full_like(codes, -1), codes);  // (B,)
    to_changed[name] = at::where(kept, at::full_like(target, -1), target);  // (B,)
  }
  return {from_changed, to_changed};
}

Tensor transfer_cells(const Denoiser& network, const Objective& objective, const Tensor& x0, const Covariates& from,
                      const Covariates& to, const SamplerSettings& settings, const std::string& mode) {
  check_transfer_mode(mode);
  const auto [from_changed, to_changed] = changed_covariates(from, to);
  at::Generator unused = at::detail::createCPUGenerator(0);
  const std::vector<double> grid = objective.time_grid(settings.steps);
  if (mode == "marginal") {
    const Tensor noise = invert_to_noise(network, objective, x0, from_changed, settings);  // (B, G)
    return run_sampler(network, objective, noise, grid, 0, to_changed, settings, unused);
  }
  const Tensor noise = invert_to_noise(network, objective, x0, from, settings);  // (B, G)
  if (mode == "joint") return run_sampler(network, objective, noise, grid, 0, to, settings, unused);
  // "contrast": the sampler's own covariates are replaced by the three branches.
  const Covariates branches = concat_covariates(concat_covariates(from, to_changed), from_changed);
  const Denoiser along_contrast = [network, branches](const Tensor& x_t, const Tensor& t, const Covariates&) {
    GeneOutput out = network(at::cat({x_t, x_t, x_t}), at::cat({t, t, t}), branches);  // (3B, G)
    std::vector<Tensor> value = out.value.chunk(3, 0);
    Tensor scale_head = out.scale.defined() ? out.scale.chunk(3, 0)[0] : Tensor();
    return GeneOutput{value[0] + value[1] - value[2], scale_head};
  };
  return run_sampler(along_contrast, objective, noise, grid, 0, to, settings, unused);
}

Denoiser with_guidance(Denoiser network, double scale) {
  if (scale == 1.0) return network;
  return [network, scale](const Tensor& x_t, const Tensor& t, const Covariates& covariates) {
    if (covariates.empty()) return network(x_t, t, covariates);
    // One batched call for both branches: (2B, G).
    GeneOutput both = network(at::cat({x_t, x_t}), at::cat({t, t}),
                              concat_covariates(covariates, null_covariates(covariates)));
    std::vector<Tensor> value = both.value.chunk(2, 0);
    Tensor scale_head = both.scale.defined() ? both.scale.chunk(2, 0)[0] : Tensor();
    return GeneOutput{value[1] + scale * (value[0] - value[1]), scale_head};
  };
}

}  // namespace exprflow
