// Expression data in, dense log-normalised minibatches out.
//
// A source holds raw counts for genes x cells in the layout they arrived in
// (CSC sparse or column-major dense) and densifies only the cells a minibatch
// asks for. Library-size normalisation and log1p happen here, so every input
// type yields bit-identical minibatches. Torch-free: the R glue includes it.
#pragma once

#include <cstdint>
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace exprflow {

// Target sum of library-size normalisation (counts per 10k, as Seurat/scanpy).
constexpr double kNormalisationTarget = 1e4;

class ExpressionSource {
 public:
  virtual ~ExpressionSource() = default;

  int n_genes() const { return static_cast<int>(genes_.size()); }
  virtual int n_cells() const = 0;
  const std::vector<std::string>& genes() const { return genes_; }

  // Total count of each cell (computed once at construction).
  const std::vector<double>& library_sizes() const { return library_size_; }

  // Raw counts of the given cells, densified: out is cells.size() x n_genes,
  // row-major (one row per cell), zero-filled first.
  virtual void fill_counts(const std::vector<int>& cells, float* out) const = 0;

  // log1p(count / library_size * 1e4) of the given cells, row-major
  // cells.size() x n_genes. Cells with zero counts give zero rows.
  void fill_log_normalised(const std::vector<int>& cells, float* out) const;

  // The same standardised per gene, (log1p(...) - mean[g]) / sd[g] (mean and
  // sd: n_genes values each), row-major cells.size() x n_genes: what a
  // minibatch feeds the networks; `counts`, when not null, also gets the
  // raw counts (as fill_counts()). The default densifies the counts and
  // standardises each row in one pass; a sparse source writes each row's
  // zero-count constants (-mean / sd) and visits its non-zero counts only.
  // Bit-identical either way, and to standardising fill_log_normalised().
  virtual void fill_standardised(const std::vector<int>& cells, const float* mean, const float* sd, float* out,
                                 float* counts = nullptr) const;

  // Orders an epoch's cells in place. In memory any order costs the same:
  // a uniform shuffle. Streamed sources shuffle blocks of nearby cells, so
  // that a minibatch reads few runs of the file.
  virtual void shuffle_epoch(std::vector<int>& order, std::mt19937_64& rng) const {
    std::shuffle(order.begin(), order.end(), rng);
  }

  // A hint that `cells` are the next fill_counts() request: streamed
  // sources read them on a background thread meanwhile. In memory: nothing.
  virtual void prefetch(const std::vector<int>& cells) const {}

  // Validation run by both constructors: throws std::invalid_argument with a
  // message naming what is wrong (negative / non-finite counts, empty input,
  // missing or duplicated gene names).
 protected:
  explicit ExpressionSource(std::vector<std::string> genes);
  void finish_construction();  // validates genes, computes library sizes
  virtual double column_sum(int cell) const = 0;

 private:
  std::vector<std::string> genes_;
  std::vector<double> library_size_;
};

// Compressed sparse column counts (genes are rows), e.g. a dgCMatrix.
// Copies the arrays: the caller's memory may be freed after construction.
class CscExpressionSource final : public ExpressionSource {
 public:
  CscExpressionSource(std::vector<std::string> genes, int n_cells, const int* col_ptr,
                      const int* row_idx, const double* values);
  int n_cells() const override { return n_cells_; }
  void fill_counts(const std::vector<int>& cells, float* out) const override;
  void fill_standardised(const std::vector<int>& cells, const float* mean, const float* sd, float* out,
                         float* counts = nullptr) const override;

 private:
  double column_sum(int cell) const override;
  int n_cells_;
  // Whether every column's row indices are strictly increasing (a dgCMatrix's
  // are): then no gene of a cell appears twice, and fill_standardised() can
  // write each non-zero count's value directly; otherwise it sums them first.
  bool rows_ascending_ = true;
  std::vector<int64_t> col_ptr_;
  std::vector<int32_t> row_idx_;
  std::vector<float> values_;
};

// Dense genes x cells counts, column-major (R's matrix layout).
class DenseExpressionSource final : public ExpressionSource {
 public:
  DenseExpressionSource(std::vector<std::string> genes, int n_cells, const double* values);
  int n_cells() const override { return n_cells_; }
  void fill_counts(const std::vector<int>& cells, float* out) const override;

 private:
  double column_sum(int cell) const override;
  int n_cells_;
  std::vector<float> values_;
};

// Applies log1p(x / library_size * target) in place to one row of n values.
void log_normalise_row(float* row, int n, double library_size, double target = kNormalisationTarget);

// (log1p(counts / library_size * target) - mean) / sd of one row of n counts
// into out (which may be counts): log_normalise_row() and the standardisation
// in one pass.
void standardise_count_row(const float* counts, int n, double library_size, const float* mean, const float* sd,
                           float* out, double target = kNormalisationTarget);

}  // namespace exprflow
