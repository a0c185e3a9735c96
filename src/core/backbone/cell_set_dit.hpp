// Cells as tokens (seed design "Cells as tokens"): DiT blocks whose attention
// runs across the cells of a minibatch instead of across the tokens of one
// cell, so that a set of cells is denoised, and generated, jointly.
//
// Cells attend only within their set: the cells of one group (the same
// covariate codes: one cell type, one perturbation), cut in batch order into
// sets of at most set_size. Training minibatches are shuffled, so a set is a
// random draw of cells of one condition; generation fills sets the same way
// from the cells asked for. Each token position of a cell attends across the
// same position of the other cells of its set (with the state-vector
// tokenizer a cell is one token). The time/condition vector stays per cell.
#pragma once

#include "backbone/backbone.hpp"
#include "backbone/dit_block.hpp"

namespace exprflow {

class CellSetDiTImpl : public BackboneImpl {
 public:
  CellSetDiTImpl(int64_t dim, int64_t n_layers, int64_t n_heads, double mlp_ratio, int64_t set_size);

  // Without groups: all cells are one group, cut into sets in batch order.
  Tensor forward(const Tensor& tokens, const Tensor& c) override;  // (B, T, D), (B, D) -> (B, T, D)
  bool attends_across_cells() const override { return true; }
  Tensor forward_groups(const Tensor& tokens, const Tensor& c,
                        const std::vector<std::vector<int64_t>>& groups) override;

  // The additive score bias among the batch's cells: 0 within a set, -inf
  // across sets. (B, B)
  Tensor set_bias(const std::vector<std::vector<int64_t>>& groups, int64_t n_cells, const at::Device& device) const;
  int64_t set_size() const { return set_size_; }

 private:
  int64_t set_size_;
  torch::nn::ModuleList blocks_{nullptr};
  FinalModulation final_{nullptr};
};
TORCH_MODULE(CellSetDiT);

}  // namespace exprflow
