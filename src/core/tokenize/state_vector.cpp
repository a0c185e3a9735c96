#include "tokenize/state_vector.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

StateVectorImpl::StateVectorImpl(int64_t n_genes, int64_t hidden) : hidden_(hidden) {
  in_ = register_module("linear_in", Linear(n_genes, hidden));
}

Tensor StateVectorImpl::forward(const Tensor& x) {
  return in_->forward(x).unsqueeze(1);  // (B, 1, D)
}

}  // namespace exprflow
