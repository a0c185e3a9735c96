#include "backbone/dit.hpp"

#include "backbone/activation_checkpoint.hpp"

#include <algorithm>
#include <stdexcept>

namespace exprflow {

std::vector<std::string> condition_paths() { return {"adaln", "cross_attention", "tokens"}; }

DiTImpl::DiTImpl(int64_t dim, int64_t n_layers, int64_t n_heads, double mlp_ratio,
                 std::shared_ptr<EdgeIndex> graph, bool checkpoint_blocks, const std::string& condition_path)
    : checkpoint_blocks_(checkpoint_blocks), condition_path_(condition_path) {
  const std::vector<std::string> paths = condition_paths();
  if (std::find(paths.begin(), paths.end(), condition_path) == paths.end()) {
    throw std::invalid_argument("setting 'condition_path' must be 'adaln', 'cross_attention' or 'tokens', got '" +
                                condition_path + "'");
  }
  if (condition_path == "tokens" && graph) {
    throw std::invalid_argument("setting 'condition_path' = 'tokens' needs attention over any tokens; this backbone's "
                                "attention follows a gene graph (use 'adaln' or 'cross_attention')");
  }
  const bool cross = condition_path == "cross_attention";
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < n_layers; ++l) blocks_->push_back(DiTBlock(dim, n_heads, mlp_ratio, graph, cross));
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

Tensor DiTImpl::forward_conditioned(const Tensor& tokens, const Tensor& c, const Tensor& condition_tokens) {
  if (condition_path_ == "adaln") return forward(tokens, c);
  if (condition_path_ == "tokens") {
    // The condition tokens join the sequence; the tokens come back without them.
    const int64_t T = tokens.size(1);
    return forward(at::cat({tokens, condition_tokens}, 1), c).slice(1, 0, T);  // (B, T, D)
  }
  // Cross-attention: no activation checkpointing (its recomputation takes x and c only).
  Tensor x = tokens;  // (B, T, D)
  for (const auto& block : *blocks_) x = block->as<DiTBlock>()->forward(x, c, Tensor(), condition_tokens);
  return final_->forward(x, c);  // (B, T, D)
}

}  // namespace exprflow
