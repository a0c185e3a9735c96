// Library sizes of the training cells, per condition level, and draws of a
// library size for a generated cell of a level. Torch-free.
//
// Two ways to draw, chosen per call (sample option `library_size`):
//   "empirical"  the size of a random training cell of the level;
//   "lognormal"  exp(N(m, s^2)) with m, s the mean and sd of the level's log
//                sizes (CFGen's per-covariate library-size model).
// A level without training cells draws from all cells (the last pool).
#pragma once

#include <random>
#include <string>
#include <vector>

namespace exprflow {

class LibrarySizePools {
 public:
  explicit LibrarySizePools(int n_levels = 0) : pools_(n_levels + 1) {}

  void clear();
  // level -1: a cell without a level (kept in the "all cells" pool only).
  void add(int level, double size);
  // Level -1 draws from all cells. An unknown `method` is std::invalid_argument.
  double draw(int level, const std::string& method, std::mt19937_64& rng) const;

  static std::vector<std::string> methods() { return {"empirical", "lognormal"}; }
  // pool(n_levels) holds every cell.
  const std::vector<double>& pool(int index) const { return pools_.at(index); }
  std::vector<double>& pool(int index) { return pools_.at(index); }
  int n_pools() const { return static_cast<int>(pools_.size()); }

 private:
  const std::vector<double>& pool_for(int level) const;
  std::vector<std::vector<double>> pools_;
};

void check_library_size_method(const std::string& method);

}  // namespace exprflow
