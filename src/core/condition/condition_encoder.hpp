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
#include "data/cell_batch.hpp"

namespace exprflow {

struct CovariateSpec {
  std::string name;
  int64_t n_levels = 0;
};

class ConditionEncoderImpl : public torch::nn::Module {
 public:
  ConditionEncoderImpl(std::vector<CovariateSpec> covariates, int64_t dim);

  // (B, dim); a declared covariate missing from `c` counts as null. Codes
  // are not range-checked here (that would synchronise the device on every
  // forward): the model checks them where it builds batches
  // (ExpressionModel::covariate_columns).
  Tensor forward(const Covariates& c, int64_t batch_size, const at::Device& device);

  const std::vector<CovariateSpec>& covariates() const { return covariates_; }

 private:
  std::vector<CovariateSpec> covariates_;
  int64_t dim_;
  std::vector<CategoricalCondition> tables_;
};
TORCH_MODULE(ConditionEncoder);

// Each covariate independently replaced by null (-1) with probability p:
// classifier-free-guidance dropout per attribute, so that guidance can later
// scale attributes separately.
Covariates drop_covariates(const Covariates& c, double p, at::Generator& generator);

}  // namespace exprflow
