#include "backbone/dit.hpp"

#include "backbone/activation_checkpoint.hpp"

namespace exprflow {

DiTImpl::DiTImpl(int64_t dim, int64_t n_layers, int64_t n_heads, double mlp_ratio,
                 std::shared_ptr<EdgeIndex> graph, bool checkpoint_blocks)
    : checkpoint_blocks_(checkpoint_blocks) {
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < n_layers; ++l) blocks_->push_back(DiTBlock(dim, n_heads, mlp_ratio, graph));
  final_ = register_module("final", FinalModulation(dim));
}

Tensor DiTImpl::forward(const Tensor& tokens, const Tensor& c) {
  Tensor x = tokens;  // (B, T, D)
  // Checkpointing only pays where a backward pass follows, and it needs an
  // input that requires grad to hang the recomputation on.
  const bool checkpoint = checkpoint_blocks_ && is_training() && torch::GradMode::is_enabled() &&
                          (x.requires_grad() || c.requires_grad());
  for (const auto& block : *blocks_) {
    auto* b = block->as<DiTBlock>();
    x = checkpoint ? checkpointed_forward(b, x, c) : b->forward(x, c);  // (B, T, D)
  }
  return final_->forward(x, c);  // (B, T, D)
}

}  // namespace exprflow
