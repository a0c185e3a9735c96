// Library sizes of the training cells with each cell's covariate codes, and
// draws of a library size for a generated cell of a combination of levels.
// Torch-free.
//
// Two ways to draw, chosen per call (sample option `library_size`):
//   "empirical"  the size of a random training cell of the combination;
//   "lognormal"  exp(N(m, s^2)) with m, s the mean and sd of the
//                combination's log sizes (CFGen's per-covariate model).
// The pool of a combination is the training cells that match every code of
// it that is not -1 (-1 matches anything). Where that pool is empty (a
// combination never seen in training), the last covariate's code is
// dropped, then the one before, until cells match: list the covariate that
// decides library size most (usually the cell type) first.
#pragma once

#include <map>
#include <random>
#include <string>
#include <vector>

namespace exprflow {

class LibrarySizePools {
 public:
  explicit LibrarySizePools(int n_covariates = 0) : n_covariates_(n_covariates) {}

  void clear();
  // One code per covariate (-1: unknown).
  void add(const std::vector<int>& codes, double size);
  // An unknown `method` is std::invalid_argument; no cells at all is too.
  double draw(const std::vector<int>& codes, const std::string& method, std::mt19937_64& rng) const;

  static std::vector<std::string> methods() { return {"empirical", "lognormal"}; }
  int n_covariates() const { return n_covariates_; }
  // Every cell added: its size, and its codes (n_covariates per cell, cell by cell).
  const std::vector<double>& sizes() const { return sizes_; }
  const std::vector<int>& codes() const { return codes_; }

 private:
  const std::vector<double>& pool_for(std::vector<int> codes) const;

  int n_covariates_;
  std::vector<double> sizes_;
  std::vector<int> codes_;
  // Pools already gathered, by the codes asked for (generation asks for few
  // combinations, many times).
  mutable std::map<std::vector<int>, std::vector<double>> cache_;
};

void check_library_size_method(const std::string& method);

}  // namespace exprflow
