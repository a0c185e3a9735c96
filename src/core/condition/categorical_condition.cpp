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

}  // namespace exprflow
