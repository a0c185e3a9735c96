// Cells written as an AnnData .h5ad file (anndata's on-disk format 0.1 /
// 0.2 encodings): X as a csr_matrix group (float32 data, int32 indices,
// int64 indptr) compressed and chunked by blocks of cells, obs and var as
// dataframes (their _index, numeric columns as arrays, labels as
// categoricals), and the empty groups anndata expects. The file is written
// under a temporary name and renamed. Torch-free and free of HDF5's headers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace exprflow {

// One obs column: numbers, or labels as categories plus one code per cell
// (-1: missing).
struct H5adColumn {
  std::string name;
  bool numeric = false;
  std::vector<double> numbers;
  std::vector<std::string> categories;
  std::vector<int32_t> codes;
};

struct H5adContent {
  std::vector<std::string> genes, cells;
  // Counts as CSR cells x genes (= CSC genes x cells, R's dgCMatrix layout).
  std::vector<int64_t> indptr;  // n_cells + 1
  std::vector<int32_t> indices;
  std::vector<float> data;
  std::vector<H5adColumn> obs;
};

// Throws std::invalid_argument for inconsistent content (naming the field)
// and std::runtime_error when the file cannot be written.
void write_h5ad(const std::string& path, const H5adContent& content, int block_cells = 64);

// The same file written block by block, for more cells than fit in memory
// at once: append() adds cells (CSR, offsets from 0), finish() writes obs
// and var and renames the finished file into place. A writer destroyed
// before finish() removes its temporary file.
class H5adWriter {
 public:
  H5adWriter(std::string path, std::vector<std::string> genes, int block_cells = 64);
  ~H5adWriter();
  H5adWriter(const H5adWriter&) = delete;
  H5adWriter& operator=(const H5adWriter&) = delete;

  // `indptr` has cells.size() + 1 offsets into `indices` / `data`, from 0.
  void append(const std::vector<std::string>& cells, const std::vector<int64_t>& indptr,
              const std::vector<int32_t>& indices, const std::vector<float>& data);
  void finish(const std::vector<H5adColumn>& obs = {});
  int64_t n_cells() const { return static_cast<int64_t>(cells_.size()); }

 private:
  struct Datasets;
  std::string path_, temporary_;
  std::vector<std::string> genes_, cells_;
  int block_cells_;
  int64_t entries_ = 0;
  std::unique_ptr<Datasets> datasets_;
};

}  // namespace exprflow
