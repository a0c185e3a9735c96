// Cells written as an AnnData .h5ad file (anndata's on-disk format 0.1 /
// 0.2 encodings): X as a csr_matrix group (float32 data, int32 indices,
// int64 indptr) compressed and chunked by blocks of cells, obs and var as
// dataframes (their _index, numeric columns as arrays, labels as
// categoricals), and the empty groups anndata expects. The file is written
// under a temporary name and renamed. Torch-free and free of HDF5's headers.
#pragma once

#include <cstdint>
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
void write_h5ad(const std::string& path, const H5adContent& content, int block_cells = 1024);

}  // namespace exprflow
