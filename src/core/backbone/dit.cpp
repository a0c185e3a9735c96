#include "backbone/dit.hpp"

#include "backbone/activation_checkpoint.hpp"
#include "backbone/edge_attention.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace exprflow {

std::vector<std::string> condition_paths() { return {"adaln", "cross_attention", "tokens"}; }

DiTImpl::DiTImpl(int64_t dim, int64_t n_layers, int64_t n_heads, double mlp_ratio,
                 std::shared_ptr<EdgeIndex> graph, bool checkpoint_blocks, const std::string& condition_path,
                 bool cell_node_summary)
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
  if (cell_node_summary && !(graph && graph->cell_node)) {
    throw std::invalid_argument("setting 'cell_node_summary' needs a gene graph with a cell node ('cell_node' = 1)");
  }
  if (graph && graph->cell_node) cell_token_ = register_parameter("cell_token", torch::zeros({dim}));
  if (cell_node_summary) {
    // LibTorch's default initialisation of a linear map from the genes:
    // about unit-scale starts for unit-scale tokens, as the summary token's.
    const int64_t genes = graph->offsets.size(0) - 2;  // nodes less the cell node
    const double bound = 1.0 / std::sqrt(static_cast<double>(genes));
    cell_weights_ = register_parameter("cell_weights", torch::empty({genes, dim}).uniform_(-bound, bound));
  }
}

Tensor DiTImpl::forward(const Tensor& tokens, const Tensor& c) { return run(tokens, c, Tensor()); }

Tensor DiTImpl::forward_conditioned(const Tensor& tokens, const Tensor& c, const Tensor& condition_tokens) {
  if (condition_path_ == "adaln") return forward(tokens, c);
  if (condition_path_ == "tokens") {
    // The condition tokens join the sequence; the tokens come back without them.
    const int64_t T = tokens.size(1);
    return forward(at::cat({tokens, condition_tokens}, 1), c).slice(1, 0, T);  // (B, T, D)
  }
  return run(tokens, c, condition_tokens);
}

Tensor DiTImpl::run(const Tensor& tokens, const Tensor& c, const Tensor& condition_tokens) {
  const int64_t T = tokens.size(1);
  Tensor x = tokens;  // (B, T, D)
  if (cell_token_.defined()) {
    if (c.dim() == 3) {
      throw std::invalid_argument("a gene graph's cell node needs one modulation per cell, not per token");
    }
    const Tensor start = cell_weights_.defined() ? (x * cell_weights_).sum(1, /*keepdim=*/true)  // (B, 1, D)
                                                 : x.mean(1, /*keepdim=*/true);
    x = at::cat({x, start + cell_token_}, 1);  // (B, T + 1, D)
  }
  const bool cross = condition_tokens.defined();
  // Checkpointing only pays where a backward pass follows, and it needs an
  // input that requires grad to hang the recomputation on. Not with
  // cross-attention: its recomputation takes x and c only.
  const bool checkpoint = !cross && checkpoint_blocks_ && is_training() && torch::GradMode::is_enabled() &&
                          (x.requires_grad() || c.requires_grad());
  for (const auto& block : *blocks_) {
    auto* b = block->as<DiTBlock>();
    if (cross) {
      x = b->forward(x, c, Tensor(), condition_tokens);
    } else {
      x = checkpoint ? checkpointed_forward(b, x, c) : b->forward(x, c);  // (B, T [+ 1], D)
    }
  }
  return final_->forward(x, c).slice(1, 0, T);  // (B, T, D)
}

}  // namespace exprflow
