#include "data/library_sizes.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace exprflow {

void check_library_size_method(const std::string& method) {
  const std::vector<std::string> all = LibrarySizePools::methods();
  if (std::find(all.begin(), all.end(), method) == all.end()) {
    throw std::invalid_argument("library_size must be 'empirical', 'lognormal' or 'matched', got '" + method + "'");
  }
}

int detected_genes(const float* log_expression, int n_genes) {
  int n = 0;
  for (int g = 0; g < n_genes; ++g) n += log_expression[g] > kDetectedLevel ? 1 : 0;
  return n;
}

void LibrarySizePools::clear() {
  sizes_.clear();
  codes_.clear();
  detected_.clear();
  detected_known_ = true;
  cache_.clear();
}

void LibrarySizePools::add(const std::vector<int>& codes, double size, int detected) {
  if (static_cast<int>(codes.size()) != n_covariates_) {
    throw std::invalid_argument("a library size needs " + std::to_string(n_covariates_) + " covariate codes, got " +
                                std::to_string(codes.size()));
  }
  sizes_.push_back(size);
  codes_.insert(codes_.end(), codes.begin(), codes.end());
  detected_.push_back(detected);
  detected_known_ = detected_known_ && detected >= 0;
  cache_.clear();
}

std::string LibrarySizePools::resolve(const std::string& method) const {
  if (method == "default") return has_detected() ? "matched" : "empirical";
  check_library_size_method(method);
  return method;
}

const LibrarySizePools::Pool& LibrarySizePools::pool_for(std::vector<int> codes) const {
  if (sizes_.empty()) throw std::invalid_argument("the model holds no library sizes (is it trained?)");
  if (static_cast<int>(codes.size()) != n_covariates_) {
    throw std::invalid_argument("a library size draw needs " + std::to_string(n_covariates_) +
                                " covariate codes, got " + std::to_string(codes.size()));
  }
  for (int dropped = n_covariates_; dropped >= 0; --dropped) {
    auto it = cache_.find(codes);
    if (it == cache_.end()) {
      Pool pool;
      for (size_t cell = 0; cell < sizes_.size(); ++cell) {
        bool match = true;
        for (int k = 0; k < n_covariates_ && match; ++k) {
          match = codes[k] < 0 || codes[k] == codes_[cell * n_covariates_ + k];
        }
        if (match) pool.cells.push_back(static_cast<int>(cell));
      }
      if (detected_known_) {
        pool.by_detected = pool.cells;
        std::stable_sort(pool.by_detected.begin(), pool.by_detected.end(),
                         [this](int a, int b) { return detected_[a] < detected_[b]; });
      }
      it = cache_.emplace(codes, std::move(pool)).first;
    }
    if (!it->second.cells.empty()) return it->second;
    if (dropped > 0) codes[dropped - 1] = -1;  // fall back: forget the last covariate still asked for
  }
  throw std::logic_error("library size pools: all-wildcard pool is empty");  // unreachable: sizes_ is not empty
}

double LibrarySizePools::draw(const std::vector<int>& codes, const std::string& method, std::mt19937_64& rng,
                              int detected) const {
  check_library_size_method(method);
  if (method == "matched") {
    if (!has_detected()) {
      throw std::invalid_argument("library_size 'matched' needs the training cells' detected genes, which this model "
                                  "does not hold (saved by an older exprflow, or not a gene-space model)");
    }
    if (detected < 0) throw std::invalid_argument("library_size 'matched' needs the generated cell's detected genes");
    return draw_matched(pool_for(codes), detected, rng);
  }
  const std::vector<int>& pool = pool_for(codes).cells;
  if (method == "empirical") {
    std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
    return sizes_[pool[pick(rng)]];
  }
  double mean = 0, square = 0;
  for (int c : pool) mean += std::log(sizes_[c]);
  mean /= pool.size();
  for (int c : pool) square += (std::log(sizes_[c]) - mean) * (std::log(sizes_[c]) - mean);
  const double sd = pool.size() > 1 ? std::sqrt(square / (pool.size() - 1)) : 0.0;
  std::normal_distribution<double> normal(mean, sd);
  return std::exp(normal(rng));
}

double LibrarySizePools::draw_matched(const Pool& pool, int detected, std::mt19937_64& rng) const {
  // The kMatchedNeighbours cells nearest in detected genes: bisect the
  // sorted pool, then widen the window [lo, hi) by its nearer side (the
  // lower side on a tie, so a seed gives the same draw).
  const std::vector<int>& sorted = pool.by_detected;
  const size_t k = std::min<size_t>(kMatchedNeighbours, sorted.size());
  size_t lo = std::lower_bound(sorted.begin(), sorted.end(), detected,
                               [this](int cell, int value) { return detected_[cell] < value; }) -
              sorted.begin();
  size_t hi = lo;
  while (hi - lo < k) {
    if (hi == sorted.size() || (lo > 0 && detected - detected_[sorted[lo - 1]] <= detected_[sorted[hi]] - detected)) {
      --lo;
    } else {
      ++hi;
    }
  }
  std::uniform_int_distribution<size_t> pick(lo, hi - 1);
  return sizes_[sorted[pick(rng)]];
}

}  // namespace exprflow
