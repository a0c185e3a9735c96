// Library sizes of the training cells with each cell's covariate codes, and
// draws of a library size for a generated cell of a combination of levels.
// Torch-free.
//
// Three ways to draw, chosen per call (sample option `library_size`):
//   "empirical"  the size of a random training cell of the combination;
//   "lognormal"  exp(N(m, s^2)) with m, s the mean and sd of the
//                combination's log sizes (CFGen's per-covariate model);
//   "matched"    (gene-space models) the training cells' sizes in the order
//                of their detected genes: the generated cells of one call
//                that share a pool are ranked by their detected genes,
//                and the cell at quantile q of them gets the size of the
//                pool's cell at quantile q by detected genes (q jittered
//                within the cell's rank, so the sizes drawn follow the
//                pool's distribution however many cells are asked for; a
//                cell asked for alone gets an "empirical" draw). A
//                gene-space sample carries the depth of the cell it
//                resembles in which genes it detects, and counts drawn at
//                another depth distort it (decode/count_decoding.hpp).
//                Ranks, not the number of detected genes itself: a sample
//                detects far more genes than a real cell at any depth
//                (its zeros are blurred), so nearest numbers would pick the
//                deepest training cells for every cell.
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

  // One code per covariate (-1: unknown); `detected`: the cell's number of
  // detected genes (detected_genes()), or -1 where not known. "matched"
  // needs it for every cell.
  void add(const std::vector<int>& codes, double size, int detected = -1);
  // Library sizes for the cells of one generation call, cell i of the
  // combination `codes[i]`, by `method`; "matched" needs each cell's
  // detected genes (`detected`, one per cell). An unknown method, a pool
  // without cells, or "matched" without detected genes (the cells' or the
  // training cells') is std::invalid_argument.
  std::vector<double> draw_all(const std::vector<std::vector<int>>& codes, const std::string& method,
                               std::mt19937_64& rng, const std::vector<int>& detected = {}) const;
  // One cell alone (draw_all() of one cell).
  double draw(const std::vector<int>& codes, const std::string& method, std::mt19937_64& rng,
              int detected = -1) const;
  // The method "default" stands for: "matched" where the training cells'
  // detected genes are known, else "empirical". Other methods are checked
  // and returned as they are.
  std::string resolve(const std::string& method) const;
  bool has_detected() const { return !sizes_.empty() && detected_known_; }

  static std::vector<std::string> methods() { return {"empirical", "lognormal", "matched"}; }
  int n_covariates() const { return n_covariates_; }
  // Every cell added: its size, its codes (n_covariates per cell, cell by
  // cell) and its detected genes (empty unless known for every cell).
  const std::vector<double>& sizes() const { return sizes_; }
  const std::vector<int>& codes() const { return codes_; }
  std::vector<int> detected() const { return detected_known_ ? detected_ : std::vector<int>{}; }

 private:
  // The cells of a combination; the mean and sd of their log sizes
  // ("lognormal"); for "matched" the cells sorted by detected genes (ties by
  // cell order).
  struct Pool {
    std::vector<int> cells;
    double log_mean = 0, log_sd = 0;
    std::vector<int> by_detected;
  };
  const Pool& pool_for(std::vector<int> codes) const;
  // "matched" sizes of the cells `members` of the call, which share `pool`.
  void draw_matched(const Pool& pool, const std::vector<int>& members, const std::vector<int>& detected,
                    std::mt19937_64& rng, std::vector<double>& sizes) const;

  int n_covariates_;
  std::vector<double> sizes_;
  std::vector<int> codes_;
  std::vector<int> detected_;
  bool detected_known_ = true;
  // Pools already gathered, by the codes asked for (generation asks for few
  // combinations, many times).
  mutable std::map<std::vector<int>, Pool> cache_;
};

// A cell's detected genes as "matched" counts them, from its log-normalised
// expression (G,): values above kDetectedLevel. A count of 1 is above it in
// any cell of fewer than 35,000 counts (log1p(1e4 / 35000) = 0.25); the same
// rule is applied to training cells and to generated ones, whose small
// values between 0 and one count's level are not detections.
constexpr float kDetectedLevel = 0.25f;
int detected_genes(const float* log_expression, int n_genes);

// Throws unless `method` is one of LibrarySizePools::methods().
void check_library_size_method(const std::string& method);

}  // namespace exprflow
