#include "data/gene_selection.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

namespace exprflow {

namespace {

// Cells densified per read of the pass that sums the selected genes.
constexpr int kSumBatchCells = 1024;

}  // namespace

GeneSelectionSource::GeneSelectionSource(std::unique_ptr<ExpressionSource> inner, std::vector<std::string> genes)
    : ExpressionSource(genes), inner_(std::move(inner)) {
  if (!inner_) throw std::invalid_argument("no source to select genes from");
  std::unordered_map<std::string, int> position;
  for (int g = 0; g < inner_->n_genes(); ++g) position.emplace(inner_->genes()[g], g);
  std::vector<std::string> missing;
  inner_index_.reserve(genes.size());
  for (const std::string& gene : genes) {
    const auto found = position.find(gene);
    if (found == position.end()) {
      missing.push_back(gene);
    } else {
      inner_index_.push_back(found->second);
    }
  }
  if (!missing.empty()) {
    std::string examples;
    for (size_t k = 0; k < std::min<size_t>(missing.size(), 5); ++k) examples += (k ? ", " : "") + missing[k];
    throw std::invalid_argument("the data lacks " + std::to_string(missing.size()) + " of the " +
                                std::to_string(genes.size()) + " genes asked for (" + examples +
                                (missing.size() > 5 ? ", ..." : "") + ")");
  }
  // One pass over the cells in file order (few, long reads).
  const int n = inner_->n_cells(), G = n_genes();
  sums_.assign(n, 0.0);
  std::vector<int> cells;
  std::vector<float> selected;
  for (int lo = 0; lo < n; lo += kSumBatchCells) {
    cells.resize(std::min(kSumBatchCells, n - lo));
    std::iota(cells.begin(), cells.end(), lo);
    selected.resize(cells.size() * static_cast<size_t>(G));
    fill_counts(cells, selected.data());
    for (size_t c = 0; c < cells.size(); ++c) {
      const float* row = selected.data() + c * G;
      sums_[lo + c] = std::accumulate(row, row + G, 0.0);
    }
  }
  finish_construction();
}

void GeneSelectionSource::fill_counts(const std::vector<int>& cells, float* out) const {
  const size_t inner_genes = static_cast<size_t>(inner_->n_genes());
  const size_t G = inner_index_.size();
  // A local buffer, not a member: fill_counts() is const and may be called
  // from several threads, as on the other sources.
  std::vector<float> buffer(cells.size() * inner_genes);
  inner_->fill_counts(cells, buffer.data());  // (B, inner genes)
  for (size_t c = 0; c < cells.size(); ++c) {
    const float* from = buffer.data() + c * inner_genes;
    float* to = out + c * G;  // (B, G)
    for (size_t g = 0; g < G; ++g) to[g] = from[inner_index_[g]];
  }
}

}  // namespace exprflow
