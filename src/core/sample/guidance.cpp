#include "sample/guidance.hpp"

#include <cmath>
#include <stdexcept>

#include "sample/samplers.hpp"

namespace exprflow {

GuidanceScales guidance_scales(const Options& sample_options, const std::vector<Covariate>& covariates) {
  GuidanceScales scales;
  if (!sample_options.has("guidance_scale")) return scales;
  const Options::Value& value = sample_options.values().at("guidance_scale");
  if (value.kind != Options::Value::Kind::options) {
    scales.joint = sample_options.number("guidance_scale");
    if (!std::isfinite(scales.joint)) throw std::invalid_argument("guidance_scale must be finite");
    return scales;
  }
  for (const auto& [name, scale] : value.nested->values()) {
    bool known = false;
    for (const Covariate& c : covariates) known = known || c.name == name;
    if (!known) {
      throw std::invalid_argument("guidance_scale names covariate '" + name + "' but the model's covariates are " +
                                  covariate_names(covariates));
    }
    if (scale.kind != Options::Value::Kind::number || !std::isfinite(scale.number)) {
      throw std::invalid_argument("guidance_scale for '" + name + "' must be one finite number");
    }
    if (scale.number != 1.0) scales.per_covariate[name] = scale.number;
  }
  return scales;
}

Denoiser with_covariate_guidance(Denoiser network, const GuidanceScales& scales) {
  if (scales.per_covariate.empty()) return with_guidance(std::move(network), scales.joint);
  return [network, scales](const Tensor& x_t, const Tensor& t, const Covariates& covariates) {
    // Branches: the full condition, then one per guided covariate present
    // in this call with that covariate nulled.
    std::vector<std::pair<std::string, double>> guided;
    for (const auto& [name, w] : scales.per_covariate) {
      if (covariates.count(name)) guided.emplace_back(name, w);
    }
    if (guided.empty()) return network(x_t, t, covariates);
    const int64_t k = static_cast<int64_t>(guided.size()) + 1;
    Covariates all = covariates;
    for (const auto& [name, w] : guided) {
      Covariates without = covariates;
      without[name] = at::full_like(covariates.at(name), -1);
      all = concat_covariates(all, without);
    }
    std::vector<Tensor> xs(k, x_t), ts(k, t);
    GeneOutput out = network(at::cat(xs), at::cat(ts), all);  // (k B, ...)
    std::vector<Tensor> value = out.value.chunk(k, 0);
    Tensor guided_value = value[0];
    for (int64_t b = 1; b < k; ++b) guided_value = guided_value + (guided[b - 1].second - 1.0) * (value[0] - value[b]);
    Tensor scale_head = out.scale.defined() ? out.scale.chunk(k, 0)[0] : Tensor();
    return GeneOutput{guided_value, scale_head};
  };
}

}  // namespace exprflow
