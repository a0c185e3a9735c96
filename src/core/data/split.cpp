#include "data/split.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

namespace exprflow {

CellSplit split_cells(int n_cells, const std::vector<int>& strata, double fraction, uint64_t seed) {
  if (fraction < 0 || fraction >= 1) {
    throw std::invalid_argument("validation fraction must be in [0, 1)");
  }
  if (!strata.empty() && static_cast<int>(strata.size()) != n_cells) {
    throw std::invalid_argument("one stratum label per cell is needed");
  }
  std::map<int, std::vector<int>> groups;
  for (int c = 0; c < n_cells; ++c) groups[strata.empty() ? 0 : strata[c]].push_back(c);

  std::mt19937_64 rng(seed);
  CellSplit split;
  for (auto& kv : groups) {
    std::vector<int>& cells = kv.second;
    std::shuffle(cells.begin(), cells.end(), rng);
    size_t n_val = 0;
    if (fraction > 0 && cells.size() >= 2) {
      n_val = std::max<size_t>(1, static_cast<size_t>(std::llround(fraction * cells.size())));
      n_val = std::min(n_val, cells.size() - 1);
    }
    split.validation.insert(split.validation.end(), cells.begin(), cells.begin() + n_val);
    split.train.insert(split.train.end(), cells.begin() + n_val, cells.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  return split;
}

void check_training_cells(const CellSplit& split) {
  if (split.train.size() >= 2) return;
  const size_t n = split.train.size() + split.validation.size();
  throw std::invalid_argument("training needs at least 2 training cells; the data has " + std::to_string(n) +
                              " cell(s), " + std::to_string(split.validation.size()) +
                              " of them held out for validation (validation_fraction): give more cells" +
                              (split.validation.empty() ? "" : " or set validation_fraction = 0"));
}

}  // namespace exprflow
