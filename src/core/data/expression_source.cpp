#include "data/expression_source.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <unordered_set>

namespace exprflow {

namespace {

void check_count(double value, int gene, int cell) {
  if (!std::isfinite(value)) {
    throw std::invalid_argument("counts must be finite: found " + std::to_string(value) +
                                " (NA, NaN or Inf) at gene " + std::to_string(gene + 1) +
                                ", cell " + std::to_string(cell + 1));
  }
  if (value < 0) {
    throw std::invalid_argument("counts must be non-negative: found " + std::to_string(value) +
                                " at gene " + std::to_string(gene + 1) + ", cell " +
                                std::to_string(cell + 1));
  }
}

void check_cells(const std::vector<int>& cells, int n_cells) {
  for (int c : cells) {
    if (c < 0 || c >= n_cells) {
      throw std::out_of_range("cell index " + std::to_string(c) + " outside [0, " +
                              std::to_string(n_cells) + ")");
    }
  }
}

}  // namespace

ExpressionSource::ExpressionSource(std::vector<std::string> genes) : genes_(std::move(genes)) {}

void ExpressionSource::finish_construction() {
  if (genes_.empty()) throw std::invalid_argument("the expression data has no genes");
  if (n_cells() == 0) throw std::invalid_argument("the expression data has zero cells");
  std::unordered_set<std::string> seen;
  for (size_t g = 0; g < genes_.size(); ++g) {
    if (genes_[g].empty()) {
      throw std::invalid_argument("gene name " + std::to_string(g + 1) + " is empty");
    }
    if (!seen.insert(genes_[g]).second) {
      throw std::invalid_argument("gene name '" + genes_[g] + "' is duplicated");
    }
  }
  library_size_.resize(n_cells());
  for (int c = 0; c < n_cells(); ++c) library_size_[c] = column_sum(c);
}

void log_normalise_row(float* row, int n, double library_size, double target) {
  if (library_size <= 0) {
    std::memset(row, 0, sizeof(float) * n);
    return;
  }
  const float scale = static_cast<float>(target / library_size);
  // Most of a droplet cell's genes are zero, and log1p(0) is 0: skipping them
  // gives the same row for a tenth of the log1p calls.
  for (int g = 0; g < n; ++g) {
    if (row[g] != 0.0f) row[g] = std::log1p(row[g] * scale);
  }
}

void standardise_count_row(const float* counts, int n, double library_size, const float* mean, const float* sd,
                           float* out, double target) {
  // The arithmetic of log_normalise_row() followed by (x - mean) / sd, so the
  // results are the same bits.
  const bool empty = library_size <= 0;
  const float scale = empty ? 0.0f : static_cast<float>(target / library_size);
  for (int g = 0; g < n; ++g) {
    const float logged = (empty || counts[g] == 0.0f) ? 0.0f : std::log1p(counts[g] * scale);
    out[g] = (logged - mean[g]) / sd[g];
  }
}

void ExpressionSource::fill_standardised(const std::vector<int>& cells, const float* mean, const float* sd,
                                         float* out, float* counts) const {
  const float* dense = counts ? counts : out;  // densified once (a streamed source reads its file once)
  fill_counts(cells, counts ? counts : out);
  const int G = n_genes();
  for (size_t b = 0; b < cells.size(); ++b) {
    standardise_count_row(dense + b * G, G, library_size_[cells[b]], mean, sd, out + b * G);
  }
}

void ExpressionSource::fill_log_normalised(const std::vector<int>& cells, float* out) const {
  fill_counts(cells, out);
  const int G = n_genes();
  for (size_t b = 0; b < cells.size(); ++b) {
    log_normalise_row(out + b * G, G, library_size_[cells[b]]);
  }
}

// ----------------------------------------------------------------- CSC ---
CscExpressionSource::CscExpressionSource(std::vector<std::string> genes, int n_cells,
                                         const int* col_ptr, const int* row_idx,
                                         const double* values)
    : ExpressionSource(std::move(genes)), n_cells_(n_cells) {
  if (n_cells < 0) throw std::invalid_argument("negative number of cells");
  const int G = n_genes();
  col_ptr_.assign(col_ptr, col_ptr + n_cells + 1);
  const int64_t nnz = col_ptr_.back();
  row_idx_.assign(row_idx, row_idx + nnz);
  values_.resize(nnz);
  for (int c = 0; c < n_cells; ++c) {
    if (col_ptr_[c + 1] < col_ptr_[c]) throw std::invalid_argument("malformed CSC column pointers");
    for (int64_t k = col_ptr_[c]; k < col_ptr_[c + 1]; ++k) {
      if (row_idx_[k] < 0 || row_idx_[k] >= G) {
        throw std::invalid_argument("CSC row index outside the gene range");
      }
      check_count(values[k], row_idx_[k], c);
      values_[k] = static_cast<float>(values[k]);
      if (k > col_ptr_[c] && row_idx_[k] <= row_idx_[k - 1]) rows_ascending_ = false;
    }
  }
  finish_construction();
}

double CscExpressionSource::column_sum(int cell) const {
  double total = 0;
  for (int64_t k = col_ptr_[cell]; k < col_ptr_[cell + 1]; ++k) total += values_[k];
  return total;
}

void CscExpressionSource::fill_counts(const std::vector<int>& cells, float* out) const {
  check_cells(cells, n_cells_);
  const int G = n_genes();
  std::memset(out, 0, sizeof(float) * cells.size() * G);
  for (size_t b = 0; b < cells.size(); ++b) {
    float* row = out + b * G;  // (G,)
    const int c = cells[b];
    for (int64_t k = col_ptr_[c]; k < col_ptr_[c + 1]; ++k) row[row_idx_[k]] += values_[k];
  }
}

// One write of each output row (its zero-count constants) and one visit of
// each non-zero count, instead of zero-filling, scattering, log-normalising
// and standardising every entry in turn: at 10% non-zero, the dense passes
// were most of the work. Measured (bench_data_path, 128 cells, ~10% non-zero,
// one thread, this project's 2-core machine): 2,000 genes 0.67 -> 0.30 ms a
// batch, 20,000 genes 7.3 -> 3.8-4.3 ms; with the raw counts alongside
// 0.69 -> 0.33 and 7.5 -> 4.8 ms. What is left is mostly log1p of the
// non-zero counts, which the separate passes computed too.
void CscExpressionSource::fill_standardised(const std::vector<int>& cells, const float* mean, const float* sd,
                                            float* out, float* counts) const {
  if (!rows_ascending_) {
    ExpressionSource::fill_standardised(cells, mean, sd, out, counts);
    return;
  }
  check_cells(cells, n_cells_);
  const int G = n_genes();
  if (counts) fill_counts(cells, counts);  // zero-fill and one scatter of the non-zero counts
  std::vector<float> zero_row(G);  // (G,): a zero count's value, (0 - mean) / sd as standardise_count_row() computes it
  for (int g = 0; g < G; ++g) zero_row[g] = (0.0f - mean[g]) / sd[g];
  for (size_t b = 0; b < cells.size(); ++b) {
    float* row = out + b * G;  // (G,)
    std::memcpy(row, zero_row.data(), sizeof(float) * G);
    const int c = cells[b];
    const double library_size = library_sizes()[c];
    if (library_size <= 0) continue;
    const float scale = static_cast<float>(kNormalisationTarget / library_size);
    for (int64_t k = col_ptr_[c]; k < col_ptr_[c + 1]; ++k) {
      const int g = row_idx_[k];
      if (values_[k] != 0.0f) row[g] = (std::log1p(values_[k] * scale) - mean[g]) / sd[g];
    }
  }
}

// --------------------------------------------------------------- dense ---
DenseExpressionSource::DenseExpressionSource(std::vector<std::string> genes, int n_cells,
                                             const double* values)
    : ExpressionSource(std::move(genes)), n_cells_(n_cells) {
  if (n_cells < 0) throw std::invalid_argument("negative number of cells");
  const int G = n_genes();
  values_.resize(static_cast<size_t>(G) * n_cells);
  for (int c = 0; c < n_cells; ++c) {
    for (int g = 0; g < G; ++g) {
      const double v = values[static_cast<size_t>(c) * G + g];
      check_count(v, g, c);
      values_[static_cast<size_t>(c) * G + g] = static_cast<float>(v);
    }
  }
  finish_construction();
}

double DenseExpressionSource::column_sum(int cell) const {
  const int G = n_genes();
  double total = 0;
  for (int g = 0; g < G; ++g) total += values_[static_cast<size_t>(cell) * G + g];
  return total;
}

void DenseExpressionSource::fill_counts(const std::vector<int>& cells, float* out) const {
  check_cells(cells, n_cells_);
  const int G = n_genes();
  for (size_t b = 0; b < cells.size(); ++b) {
    std::memcpy(out + b * G, values_.data() + static_cast<size_t>(cells[b]) * G, sizeof(float) * G);
  }
}

}  // namespace exprflow
