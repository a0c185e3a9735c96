#include "condition/perturbation_condition.hpp"

#include <algorithm>
#include <stdexcept>

namespace exprflow {

PerturbationConditionImpl::PerturbationConditionImpl(int64_t n_members,
                                                     std::vector<std::vector<int64_t>> level_members,
                                                     int64_t dim, bool dosed, double dose_scale)
    : n_members_(n_members), level_members_(std::move(level_members)), dosed_(dosed), dose_scale_(dose_scale) {
  if (n_members < 1) throw std::invalid_argument("a perturbation covariate needs at least one member");
  if (!(dose_scale > 0)) throw std::invalid_argument("a perturbation covariate's dose scale must be positive");
  member_table_ = register_module("members", torch::nn::Embedding(n_members, dim));
  // Small, as the categorical tables (DiT's 0.02), next to the timestep embedding.
  control_ = register_parameter("control", at::randn({dim}) * 0.02);
  null_ = register_parameter("null", at::randn({dim}) * 0.02);
  {
    torch::NoGradGuard no_grad;
    member_table_->weight.normal_(0.0, 0.02);
  }
  if (dosed_) {
    log_hill_ = register_parameter("log_hill", at::zeros({n_members}));            // h = 1
    log_half_dose_ = register_parameter("log_half_dose", at::zeros({n_members}));  // k = dose_scale
  }
}

Tensor PerturbationConditionImpl::level_members_table(const at::Device& device) {
  if (!table_cache_.defined()) {
    size_t width = 1;
    for (const auto& m : level_members_) width = std::max(width, m.size());
    std::vector<int64_t> flat(level_members_.size() * width, -1);
    for (size_t l = 0; l < level_members_.size(); ++l) {
      std::copy(level_members_[l].begin(), level_members_[l].end(), flat.begin() + l * width);
    }
    table_cache_ = at::tensor(flat, at::TensorOptions().dtype(at::kLong))
                       .view({static_cast<int64_t>(level_members_.size()), static_cast<int64_t>(width)});
  }
  if (table_cache_.device() != device) table_cache_ = table_cache_.to(device);
  return table_cache_;  // (levels, K)
}

Tensor PerturbationConditionImpl::dose_response(const Tensor& members, const Tensor& doses) {
  const Tensor present = (members >= 0).to(at::kFloat);  // (B, K)
  if (!dosed_ || !doses.defined()) return present;
  const Tensor m = members.clamp_min(0);                              // (B, K)
  const Tensor d = doses.to(at::kFloat) / dose_scale_;                // (B, K)
  const Tensor hill = log_hill_.exp().index_select(0, m.flatten()).view_as(d);       // (B, K)
  const Tensor log_k = log_half_dose_.index_select(0, m.flatten()).view_as(d);       // (B, K)
  // log of a zero dose is clamped so the gradient stays finite; where() then
  // gives it exactly no effect.
  const Tensor curve = at::sigmoid(hill * (d.clamp_min(1e-12).log() - log_k));       // (B, K)
  return present * at::where(d > 0, curve, at::zeros_like(curve));
}

Tensor PerturbationConditionImpl::forward(const Tensor& codes, const Tensor& members, const Tensor& doses) {
  Tensor slots = members;  // (B, K)
  if (!slots.defined()) {
    const Tensor table = level_members_table(codes.device());  // (levels, K)
    slots = table.index_select(0, codes.clamp(0, table.size(0) - 1));
  }
  const Tensor weight = dose_response(slots, doses);                       // (B, K)
  const Tensor embedded = member_table_->forward(slots.clamp_min(0));      // (B, K, D)
  const Tensor sum = (weight.unsqueeze(-1) * embedded).sum(1) + control_;  // (B, D)
  return at::where((codes < 0).unsqueeze(1), null_.unsqueeze(0).expand_as(sum), sum);
}

}  // namespace exprflow
