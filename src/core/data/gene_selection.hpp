// A source that shows another source's cells through a chosen list of genes,
// in that list's order: a model trained on 2,000 genes applied to a file of
// 30,000, or to a file whose genes come in another order. Files cannot be
// subset in place the way an R matrix is (counts[genes, ]), so the selection
// happens here, per minibatch. Library sizes are the sums over the chosen
// genes, as for a matrix subset in R: a cell gives the same minibatch from a
// file as from the same counts subset in memory. Torch-free.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/expression_source.hpp"

namespace exprflow {

class GeneSelectionSource final : public ExpressionSource {
 public:
  // Throws std::invalid_argument naming the missing genes when `genes` are
  // not all in `inner`. Reads every cell once (the selected genes' sums).
  GeneSelectionSource(std::unique_ptr<ExpressionSource> inner, std::vector<std::string> genes);

  int n_cells() const override { return inner_->n_cells(); }
  void fill_counts(const std::vector<int>& cells, float* out) const override;
  void shuffle_epoch(std::vector<int>& order, std::mt19937_64& rng) const override {
    inner_->shuffle_epoch(order, rng);
  }
  void prefetch(const std::vector<int>& cells) const override { inner_->prefetch(cells); }

  const ExpressionSource& inner() const { return *inner_; }

 private:
  double column_sum(int cell) const override { return sums_[cell]; }

  std::unique_ptr<ExpressionSource> inner_;
  std::vector<int> inner_index_;  // the inner gene of each selected gene
  std::vector<double> sums_;
};

}  // namespace exprflow
