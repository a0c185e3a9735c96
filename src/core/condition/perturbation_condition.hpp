// Perturbation sets (e.g. CRISPR targets "JAK2+STAT1", drugs with doses) ->
// one vector per cell.
//
// Each member (one gene knocked out, one drug) has its own embedding; a cell's
// vector is a learned control vector plus the sum of its members' embeddings,
// each scaled by the member's dose response when the covariate is dosed.
// Sums are what make a combination never seen in training (A+B from A and B
// alone) something the model can be asked for. The dose response is a Hill
// curve per member, d^h / (d^h + k^h) = sigmoid(h (log d - log k)) with h, k
// > 0 learned (CPA's "logsigm" response, monotone in the dose and exactly 0
// at dose 0, so "no dose" means no effect). Code -1 is the null vector
// (classifier-free guidance), whatever the members.
#pragma once

#include <vector>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class PerturbationConditionImpl : public torch::nn::Module {
 public:
  // `level_members`: per level, its members' indices in [0, n_members) (none
  // for the control level). Doses are divided by `dose_scale` first (a
  // typical dose, so that k starts near it).
  PerturbationConditionImpl(int64_t n_members, std::vector<std::vector<int64_t>> level_members, int64_t dim,
                            bool dosed, double dose_scale);

  // codes (B,) int64 level codes (-1: null); members (B, K) int64 member
  // indices (-1: empty slot), undefined: the members of each code's level
  // (which must then be one of the model's levels); doses (B, K), undefined:
  // dose 1 each. -> (B, dim)
  Tensor forward(const Tensor& codes, const Tensor& members, const Tensor& doses);

  // (B, K) the dose response of each slot (members -1 give 0): for tests
  // and plots of the learned curves.
  Tensor dose_response(const Tensor& members, const Tensor& doses);

 private:
  Tensor level_members_table(const at::Device& device);

  int64_t n_members_;
  std::vector<std::vector<int64_t>> level_members_;
  bool dosed_;
  double dose_scale_;
  torch::nn::Embedding member_table_{nullptr};
  Tensor control_, null_;            // (dim)
  Tensor log_hill_, log_half_dose_;  // (n_members) when dosed
  Tensor table_cache_;               // (levels, K) on the last device used
};
TORCH_MODULE(PerturbationCondition);

}  // namespace exprflow
