// Categorical condition (e.g. cell type) -> one vector per cell.
//
// Row `n_levels` of the table is the null condition: classifier-free guidance
// trains with a fraction of conditions replaced by it and samples with it as
// the unconditional branch. An unconditional model is n_levels = 0 (only the
// null row, which is then a learned constant).
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class CategoricalConditionImpl : public torch::nn::Module {
 public:
  CategoricalConditionImpl(int64_t n_levels, int64_t dim);

  Tensor forward(const Tensor& levels);  // (B,) int64 in [0, n_levels] -> (B, dim)

  int64_t null_index() const { return n_levels_; }
  int64_t n_levels() const { return n_levels_; }

 private:
  int64_t n_levels_;
  torch::nn::Embedding table_{nullptr};
};
TORCH_MODULE(CategoricalCondition);

}  // namespace exprflow
