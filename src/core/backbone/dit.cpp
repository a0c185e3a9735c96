#include "backbone/dit.hpp"

namespace exprflow {

DiTImpl::DiTImpl(int64_t dim, int64_t n_layers, int64_t n_heads, double mlp_ratio,
                 std::shared_ptr<EdgeIndex> graph) {
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < n_layers; ++l) blocks_->push_back(DiTBlock(dim, n_heads, mlp_ratio, graph));
  final_ = register_module("final", FinalModulation(dim));
}

Tensor DiTImpl::forward(const Tensor& tokens, const Tensor& c) {
  Tensor x = tokens;  // (B, T, D)
  for (const auto& block : *blocks_) x = block->as<DiTBlock>()->forward(x, c);
  return final_->forward(x, c);  // (B, T, D)
}

}  // namespace exprflow
