#include "backbone/learned_graph_dit.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace exprflow {

LearnedGraphDiTImpl::LearnedGraphDiTImpl(int64_t n_tokens, int64_t dim, int64_t n_layers, int64_t n_heads,
                                         double mlp_ratio, int64_t degree)
    : n_tokens_(n_tokens), degree_(std::min(degree, n_tokens - 1)) {
  if (degree < 0) throw std::invalid_argument("setting 'graph_degree' must be at least 0");
  // Small random logits: distinct from the first step (no ties for the
  // top-degree choice) and every kept weight near sigmoid(0) = 1/2.
  edge_logits_ = register_parameter("edge_logits", at::randn({n_tokens, n_tokens}) * 0.1);
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < n_layers; ++l) blocks_->push_back(DiTBlock(dim, n_heads, mlp_ratio));
  final_ = register_module("final", FinalModulation(dim));
}

Tensor LearnedGraphDiTImpl::attention_bias() const {
  const int64_t T = n_tokens_;
  const Tensor self = at::eye(T, edge_logits_.options().dtype(at::kBool));  // (T, T)
  Tensor kept = self.clone();
  if (degree_ > 0) {
    // Each row's strongest other tokens; the diagonal is always kept, so it
    // does not compete for the `degree` places.
    const Tensor others = edge_logits_.detach().masked_fill(self, -std::numeric_limits<float>::infinity());
    const Tensor sources = std::get<1>(others.topk(degree_, /*dim=*/1));  // (T, degree)
    kept = kept.scatter(1, sources, true);                                // (T, T)
  }
  return at::log_sigmoid(edge_logits_).masked_fill(kept.logical_not(),
                                                   -std::numeric_limits<float>::infinity());  // (T, T)
}

Tensor LearnedGraphDiTImpl::adjacency() const {
  return attention_bias().exp();  // (T, T)
}

Tensor LearnedGraphDiTImpl::forward(const Tensor& tokens, const Tensor& c) {
  if (tokens.size(1) != n_tokens_) {
    throw std::invalid_argument("the learned token graph has " + std::to_string(n_tokens_) + " tokens, got " +
                                std::to_string(tokens.size(1)));
  }
  const Tensor bias = attention_bias();  // (T, T), broadcast over cells and heads
  Tensor x = tokens;                     // (B, T, D)
  for (const auto& block : *blocks_) x = block->as<DiTBlock>()->forward(x, c, bias);
  return final_->forward(x, c);  // (B, T, D)
}

}  // namespace exprflow
