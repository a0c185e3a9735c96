// Counts streamed from an HDF5 file instead of held in memory:
//   10x Genomics .h5   /matrix/{data,indices,indptr,shape,barcodes,features/name}
//                      (CSC genes x cells: one contiguous column per cell);
//   AnnData .h5ad      X (or layers/<name>) as a csr_matrix group (cells x
//                      genes: one contiguous row per cell), a csc_matrix
//                      group (one contiguous column per gene: rewritten
//                      once, out of core, into a CSR copy in a scratch
//                      folder, data/csc_transpose) or a dense 2-d dataset;
//                      genes from var, cells from obs (their _index);
//   any HDF5 file      one named object of counts (open_matrix): a 2-d
//                      dataset (cells x genes in HDF5's order, e.g. R's
//                      HDF5Array of a genes x cells matrix), a group of
//                      data / indices / indptr with one indptr segment per
//                      cell (TENxMatrix, CSR H5ADMatrix), or an AnnData
//                      csc_matrix group (copied as above); the caller names
//                      the genes.
// Only `indptr` (one offset per cell) and the gene names stay in memory; a
// minibatch reads each run of nearby cells' `data` and `indices` in one
// hyperslab. Library sizes come from one streaming pass at open, which also
// checks every value (finite, non-negative, whole) and every gene index.
// Epochs are ordered by block shuffling (shuffle_epoch) so that minibatches
// read few runs. Torch-free, and free of HDF5's headers: the R glue includes it.
#pragma once

#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "data/expression_source.hpp"

namespace exprflow {

// One obs column of an .h5ad: numbers (numeric and boolean arrays) or
// labels (strings and categoricals; `missing` marks a categorical's -1
// codes). Columns of other encodings are listed with `supported` false.
struct ObsColumn {
  std::string name;
  bool supported = true;
  bool numeric = false;
  bool logical = false;
  std::vector<double> numbers;
  std::vector<std::string> labels;
  std::vector<bool> missing;
  std::string encoding;  // e.g. "categorical", "string-array", "array"
};

class Hdf5ExpressionSource final : public ExpressionSource {
 public:
  // `layer` "" reads X of an .h5ad (or the matrix of a 10x file); otherwise
  // layers/<layer> of an .h5ad. A CSC matrix's CSR copy goes to
  // `scratch_folder` ("" : the system's temporary folder); it is removed
  // as soon as it is open (with the source where the system does not allow
  // that). Throws std::invalid_argument naming the file and the missing or
  // malformed field.
  static std::unique_ptr<Hdf5ExpressionSource> open(const std::string& path, const std::string& layer = "",
                                                    const std::string& scratch_folder = "");
  // The counts in the object `name` of `path` (see above), with `genes` as
  // the gene names (their number is checked against the object's shape).
  static std::unique_ptr<Hdf5ExpressionSource> open_matrix(const std::string& path, const std::string& name,
                                                           std::vector<std::string> genes,
                                                           const std::string& scratch_folder = "");
  ~Hdf5ExpressionSource() override;

  int n_cells() const override { return n_cells_; }
  void fill_counts(const std::vector<int>& cells, float* out) const override;
  void shuffle_epoch(std::vector<int>& order, std::mt19937_64& rng) const override;
  // Reads `cells` on a background thread (HDF5 only, never R); the next
  // fill_counts() of exactly those cells copies them from there.
  void prefetch(const std::vector<int>& cells) const override;

  // "10x_h5", "h5ad_csr", "h5ad_csc", "h5ad_dense", or open_matrix()'s
  // "hdf5_sparse" / "hdf5_csc" / "hdf5_dense".
  const std::string& format() const { return format_; }
  // Read from the file when asked (not kept in memory).
  std::vector<std::string> cell_names() const;
  // The obs columns of an .h5ad in their column order (none for the other
  // formats).
  std::vector<ObsColumn> obs_columns() const;

  // Cells per block of the epoch order: about one compressed chunk of the
  // file (a chunk is decompressed whole), at least kMinBlockCells; and the
  // number of blocks whose cells are shuffled together.
  int block_cells() const { return block_cells_; }
  static constexpr int kMinBlockCells = 64;
  static constexpr int kBlocksPerBuffer = 16;

 private:
  struct File;
  Hdf5ExpressionSource(std::unique_ptr<File> file, std::vector<std::string> genes);
  static std::unique_ptr<File> open_file(const std::string& path);  // read-only; errors name the file
  // Opens the datasets of file->matrix, reads indptr, checks and sums every
  // cell: what every format shares once its genes and cells are known.
  static std::unique_ptr<Hdf5ExpressionSource> finish_open(std::unique_ptr<File> file, std::vector<std::string> genes,
                                                           const std::string& path, const std::string& format,
                                                           int64_t n_cells);
  double column_sum(int cell) const override { return sums_[cell]; }
  void compute_sums_and_check();
  void read_counts(const std::vector<int>& cells, float* out) const;  // under mutex_
  void wait_for_prefetch() const;

  std::unique_ptr<File> file_;
  std::string path_, format_;
  int n_cells_ = 0;
  int block_cells_ = kMinBlockCells;
  std::vector<int64_t> indptr_;  // sparse layouts: n_cells + 1 offsets
  std::vector<double> sums_;     // filled by the streaming pass at open
  mutable std::mutex mutex_;     // HDF5 is not thread-safe: one reader at a time
  // The background read of the next minibatch (prefetch()).
  mutable std::future<void> pending_;
  mutable std::vector<int> pending_cells_;
  mutable std::vector<float> pending_counts_;
  mutable bool pending_ok_ = false;
};

}  // namespace exprflow
