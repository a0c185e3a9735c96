#include "condition/categorical_condition.hpp"

namespace exprflow {

CategoricalConditionImpl::CategoricalConditionImpl(int64_t n_levels, int64_t dim)
    : n_levels_(n_levels) {
  table_ = register_module("table", torch::nn::Embedding(n_levels + 1, dim));
  // DiT initialises label embeddings with std 0.02 so they start small next
  // to the timestep embedding.
  torch::NoGradGuard no_grad;
  table_->weight.normal_(0.0, 0.02);
}

Tensor CategoricalConditionImpl::forward(const Tensor& levels) {
  return table_->forward(levels);  // (B, dim)
}

Tensor drop_conditions(const Tensor& levels, double p, int64_t null_index,
                       at::Generator& generator) {
  if (p <= 0) return levels;
  Tensor u = at::rand(levels.sizes(), generator, levels.options().dtype(at::kFloat));  // (B,)
  return at::where(u < p, at::full_like(levels, null_index), levels);
}

}  // namespace exprflow
