// Seeded train / validation split of cells, stratified by a label so that
// rare conditions are represented in both parts where they can be.
#pragma once

#include <cstdint>
#include <vector>

namespace exprflow {

struct CellSplit {
  std::vector<int> train, validation;  // 0-based cell indices, increasing
};

// `strata` holds one label per cell (any ints; empty = one stratum). Each
// stratum with at least 2 cells sends round(fraction * n) (at least 1) of them
// to validation; fraction 0 gives an empty validation set.
CellSplit split_cells(int n_cells, const std::vector<int>& strata, double fraction, uint64_t seed);

// Throws std::invalid_argument, saying how many cells there are and how many
// validation took, when fewer than 2 cells are left to train on (the data's
// scaling and count dispersions need two).
void check_training_cells(const CellSplit& split);

}  // namespace exprflow
