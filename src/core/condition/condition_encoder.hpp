// Covariates -> one condition vector per cell.
//
// Each categorical covariate gets its own embedding table (row n_levels is its
// "null" row, what classifier-free guidance trains and samples the
// unconditional branch with); the condition vector is their sum, so a
// combination of levels never seen together can still be asked for. A model
// without covariates gets a zero condition. Code -1 means "null".
#pragma once

#include <string>
#include <vector>

#include "condition/categorical_condition.hpp"
#include "condition/perturbation_condition.hpp"
#include "data/cell_batch.hpp"

namespace exprflow {

struct CovariateSpec {
  std::string name;
  int64_t n_levels = 0;
  // Perturbation covariates (see condition/perturbation_condition.hpp): the
  // members of each level, indices into n_members member embeddings.
  bool perturbation_set = false;
  int64_t n_members = 0;
  std::vector<std::vector<int64_t>> level_members;
  bool dosed = false;
  double dose_scale = 1.0;
};

class ConditionEncoderImpl : public torch::nn::Module {
 public:
  ConditionEncoderImpl(std::vector<CovariateSpec> covariates, int64_t dim);

  // (B, dim); a declared covariate missing from `c` counts as null. Codes
  // are not range-checked here (that would synchronise the device on every
  // forward): the model checks them where it builds batches
  // (ExpressionModel::covariate_columns).
  Tensor forward(const Covariates& c, int64_t batch_size, const at::Device& device);
  // (B, C, dim): each covariate's vector as its own token (condition paths
  // "cross_attention" and "tokens"); one zero token for a model without
  // covariates. forward() is their sum.
  Tensor tokens(const Covariates& c, int64_t batch_size, const at::Device& device);

  const std::vector<CovariateSpec>& covariates() const { return covariates_; }

 private:
  std::vector<CovariateSpec> covariates_;
  int64_t dim_;
  // One per covariate, in order: a table for a categorical covariate (the
  // other null), a perturbation encoder for a perturbation set.
  std::vector<CategoricalCondition> tables_;
  std::vector<PerturbationCondition> perturbations_;

  std::vector<Tensor> per_covariate(const Covariates& c, int64_t batch_size, const at::Device& device);  // C x (B, D)
};
TORCH_MODULE(ConditionEncoder);

// Each covariate independently replaced by null (-1) with probability p
// (a perturbation set as a whole; its members and doses are kept as they are):
// classifier-free-guidance dropout per attribute, so that guidance can later
// scale attributes separately.
Covariates drop_covariates(const Covariates& c, double p, at::Generator& generator);

}  // namespace exprflow
