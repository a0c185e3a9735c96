// An AnnData csc_matrix group (cells x genes stored one contiguous column
// per gene: indices are cells) rewritten as a CSR .h5ad (one contiguous row
// per cell), which the streamed source reads by cell. Out of core: memory
// holds the column offsets (genes + 1), one offset per cell and at most
// `max_entries` transposed entries. Each pass reads the whole group once and
// writes the rows of the next cells whose entries fit in the budget, so a
// matrix of E entries takes about E / max_entries + 1 passes (and one more,
// over the indices alone, to count each cell's entries). Within a row the
// genes come in column order; entries of one cell repeated in a column stay
// separate (a reader sums them, as it does in any CSR file).
// Internal to the data stage (includes <hdf5.h>).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/hdf5_read.hpp"

namespace exprflow {

// Default budget: 2^25 entries (256 MB of values and gene indices).
constexpr int64_t kCscTransposeEntries = int64_t(1) << 25;

// Writes `out_path` (an .h5ad: X as csr_matrix, var = `genes`, obs with
// empty names) from the group `group` of the open `file` (named `path` in
// errors), which holds `n_cells` cells and genes.size() genes. Throws
// std::invalid_argument naming `path` and the malformed field (offsets,
// or a cell index outside the cells).
void transpose_csc_to_h5ad(hid_t file, const std::string& path, const std::string& group, int64_t n_cells,
                           const std::vector<std::string>& genes, const std::string& out_path,
                           int64_t max_entries = kCscTransposeEntries);

}  // namespace exprflow
