#include "backbone/cell_set_dit.hpp"

#include <limits>
#include <numeric>
#include <stdexcept>

#include "data/covariate_groups.hpp"

namespace exprflow {

CellSetDiTImpl::CellSetDiTImpl(int64_t dim, int64_t n_layers, int64_t n_heads, double mlp_ratio, int64_t set_size)
    : set_size_(set_size) {
  if (set_size < 1) throw std::invalid_argument("setting 'set_size' must be at least 1");
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < n_layers; ++l) blocks_->push_back(DiTBlock(dim, n_heads, mlp_ratio));
  final_ = register_module("final", FinalModulation(dim));
}

Tensor CellSetDiTImpl::set_bias(const std::vector<std::vector<int64_t>>& groups, int64_t n_cells,
                                const at::Device& device) const {
  const Tensor set = cell_set_ids(groups, n_cells, set_size_, device);  // (B,)
  const Tensor same = set.unsqueeze(1) == set.unsqueeze(0);            // (B, B)
  return at::zeros({n_cells, n_cells}, at::TensorOptions().dtype(at::kFloat).device(device))
      .masked_fill(same.logical_not(), -std::numeric_limits<float>::infinity());  // (B, B)
}

Tensor CellSetDiTImpl::forward(const Tensor& tokens, const Tensor& c) {
  std::vector<int64_t> all(tokens.size(0));
  std::iota(all.begin(), all.end(), 0);
  return forward_groups(tokens, c, {all});
}

Tensor CellSetDiTImpl::forward_groups(const Tensor& tokens, const Tensor& c,
                                      const std::vector<std::vector<int64_t>>& groups) {
  const int64_t B = tokens.size(0), T = tokens.size(1);
  const Tensor bias = set_bias(groups, B, tokens.device()).to(tokens.dtype());  // (B, B), over positions and heads
  // The cells become the attended sequence: one sequence per token position.
  Tensor x = tokens.transpose(0, 1);                         // (T, B, D)
  const Tensor per_cell = c.unsqueeze(0).expand({T, B, c.size(1)});  // (T, B, D)
  for (const auto& block : *blocks_) x = block->as<DiTBlock>()->forward(x, per_cell, bias);
  return final_->forward(x, per_cell).transpose(0, 1).contiguous();  // (B, T, D)
}

}  // namespace exprflow
