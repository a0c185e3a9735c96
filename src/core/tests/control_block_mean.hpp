// The mean log expression of genes [lo, hi) over the cells whose code is 0
// (the control level): how far a transfer moved a block of genes.
#pragma once

#include <vector>

#include "exprflow/api.hpp"

inline double control_block_mean(const exprflow::GeneratedCells& cells, const std::vector<int>& codes, int lo,
                                 int hi) {
  double sum = 0;
  int m = 0;
  for (int i = 0; i < cells.n_cells; ++i) {
    if (codes[i] != 0) continue;
    ++m;
    for (int g = lo; g < hi; ++g) sum += cells.logcounts[static_cast<size_t>(i) * cells.n_genes + g];
  }
  return sum / ((hi - lo) * static_cast<double>(m));
}
