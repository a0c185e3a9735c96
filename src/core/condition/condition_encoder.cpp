#include "condition/condition_encoder.hpp"

#include <stdexcept>

namespace exprflow {

ConditionEncoderImpl::ConditionEncoderImpl(std::vector<CovariateSpec> covariates, int64_t dim)
    : covariates_(std::move(covariates)), dim_(dim) {
  for (const CovariateSpec& spec : covariates_) {
    if (spec.n_levels < 0) throw std::invalid_argument("covariate '" + spec.name + "' has a negative level count");
    if (spec.perturbation_set) {
      tables_.emplace_back(nullptr);
      perturbations_.push_back(register_module(
          spec.name, PerturbationCondition(spec.n_members, spec.level_members, dim, spec.dosed, spec.dose_scale)));
    } else {
      tables_.push_back(register_module(spec.name, CategoricalCondition(spec.n_levels, dim)));
      perturbations_.emplace_back(nullptr);
    }
  }
}

std::vector<Tensor> ConditionEncoderImpl::per_covariate(const Covariates& c, int64_t batch_size,
                                                        const at::Device& device) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < covariates_.size(); ++i) {
    const CovariateSpec& spec = covariates_[i];
    auto it = c.find(spec.name);
    Tensor codes = it == c.end() ? at::full({batch_size}, -1, at::TensorOptions().dtype(at::kLong).device(device))
                                 : it->second;  // (B,)
    if (spec.perturbation_set) {
      const auto side = [&](const std::string& key) {
        auto found = c.find(key);
        return found == c.end() ? Tensor() : found->second;
      };
      out.push_back(perturbations_[i]->forward(codes, side(members_key(spec.name)), side(doses_key(spec.name))));  // (B, D)
      continue;
    }
    Tensor rows = at::where(codes < 0, at::full_like(codes, spec.n_levels), codes);  // -1 -> null row
    out.push_back(tables_[i]->forward(rows));                                          // (B, D)
  }
  return out;
}

Tensor ConditionEncoderImpl::forward(const Covariates& c, int64_t batch_size, const at::Device& device) {
  Tensor out = at::zeros({batch_size, dim_}, at::TensorOptions().dtype(at::kFloat).device(device));  // (B, D)
  for (const Tensor& v : per_covariate(c, batch_size, device)) out = out + v;
  return out;
}

Tensor ConditionEncoderImpl::tokens(const Covariates& c, int64_t batch_size, const at::Device& device) {
  std::vector<Tensor> each = per_covariate(c, batch_size, device);
  if (each.empty()) return at::zeros({batch_size, 1, dim_}, at::TensorOptions().dtype(at::kFloat).device(device));
  return at::stack(each, 1);  // (B, C, D)
}

Covariates drop_covariates(const Covariates& c, double p, at::Generator& generator) {
  if (p <= 0) return c;
  Covariates out;
  for (const auto& [name, codes] : c) {
    if (is_side_tensor(name)) {  // members and doses follow their covariate's code
      out[name] = codes;
      continue;
    }
    Tensor u = at::rand(codes.sizes(), generator, at::TensorOptions().dtype(at::kFloat)).to(codes.device());  // (B,)
    out[name] = at::where(u < p, at::full_like(codes, -1), codes);
  }
  return out;
}

}  // namespace exprflow
