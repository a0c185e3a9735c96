// Mean codes (e.g. VAE latent means) of the training cells per combination of
// covariate levels, and the shift that moves a cell from one combination to
// another: scGen's latent arithmetic, generalised to several covariates.
// Torch-free.
//
// A cell moving from codes `from` to codes `to` changes the covariates whose
// codes differ ("changed"); the others are its context. The shift is
//   own context  mean(context, to) - mean(context, from), when the training
//                cells of the cell's own context hold both ends (a
//                combination seen in training);
//   otherwise    the average of that difference over every context whose
//                training cells hold both ends, each context weighted by how
//                alike its `from` end is to the cell's own (a Gaussian kernel
//                on the distance between their means, set_context_bandwidth());
//                with an infinite bandwidth, or when the cell's own context
//                has no training cells at `from`, each context counts once,
//                however many cells it has (scGen's balanced delta);
//   otherwise    the pooled difference mean(to) - mean(from) over all cells,
//                whatever their context.
// A code of -1 (in a pattern or a target) matches every level. Asking for a
// level no training cell has is std::invalid_argument naming the covariate.
#pragma once

#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace exprflow {

class CovariateCentroids {
 public:
  CovariateCentroids() = default;
  CovariateCentroids(std::vector<std::string> covariate_names, int dims);

  void clear();
  // One cell: its codes (one per covariate, -1 unknown) and its vector (dims values).
  void add(const std::vector<int>& codes, const float* vector);
  // (dims,) the shift from `from` to `to` (one code per covariate each).
  const std::vector<float>& shift(const std::vector<int>& from, const std::vector<int>& to) const;

  // The width of the kernel that weighs other contexts' shifts, as a
  // fraction of the median distance between their `from` means: context c
  // weighs exp(-(d_c^2 - d_min^2) / (2 h^2)), d_c the distance of its `from`
  // mean to the cell's own, h = bandwidth x that median. Infinity (the
  // default) weighs every context equally. Why: a response depends on the
  // state it starts from (on Kang 2018, IFN-beta moves monocytes far more
  // than lymphocytes), so the contexts that start nearest predict it best.
  void set_context_bandwidth(double bandwidth);
  double context_bandwidth() const { return bandwidth_; }

  // Whether training cells have level `code` of covariate `covariate`.
  bool has_level(int covariate, int code) const;
  // Training cells of exactly this combination of levels (0: none).
  long cells_of(const std::vector<int>& codes) const;
  // A combination with training cells one covariate away from `codes`:
  // covariate j at another level, trying j from the last covariate to the
  // first (so the first ones, e.g. cell type, are kept longest) and skipping
  // those `movable` marks false; of j's levels, the one with the most cells
  // (ties: the lowest code). Empty when there is none.
  std::vector<int> nearest_seen(const std::vector<int>& codes, const std::vector<bool>& movable) const;

  bool empty() const { return groups_.empty(); }
  int dims() const { return dims_; }
  int n_covariates() const { return static_cast<int>(names_.size()); }

  // Storage: one row per combination seen, in a fixed order.
  struct Table {
    std::vector<int> codes;     // (K x n_covariates)
    std::vector<float> means;   // (K x dims)
    std::vector<long> counts;   // (K)
  };
  Table table() const;
  // Replaces the contents; sizes that do not match are std::invalid_argument.
  void restore(const Table& table);

 private:
  struct Group {
    std::vector<double> sum;
    long count = 0;
  };
  // The pooled mean over groups matching `pattern` (-1: any); false when none has cells.
  bool pooled_mean(const std::vector<int>& pattern, std::vector<double>& mean) const;
  std::vector<float> compute_shift(const std::vector<int>& from, const std::vector<int>& to) const;

  // Step 2's weights (summing to 1) of the contexts whose `from` means are
  // `sources`, for a cell whose own `from` mean is `own` (nullptr: unknown).
  // Empty: every context weighs the same.
  std::vector<double> context_weights(const std::vector<std::vector<double>>& sources,
                                      const std::vector<double>* own) const;

  std::vector<std::string> names_;
  int dims_ = 0;
  double bandwidth_ = std::numeric_limits<double>::infinity();
  std::map<std::vector<int>, Group> groups_;
  mutable std::map<std::pair<std::vector<int>, std::vector<int>>, std::vector<float>> cache_;
};

}  // namespace exprflow
