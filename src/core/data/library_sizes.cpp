#include "data/library_sizes.hpp"

#include <algorithm>
#include <cmath>
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
      // The log-normal fit of the pool's sizes, once per pool.
      for (int c : pool.cells) pool.log_mean += std::log(sizes_[c]);
      pool.log_mean /= std::max<size_t>(pool.cells.size(), 1);
      double square = 0;
      for (int c : pool.cells) square += (std::log(sizes_[c]) - pool.log_mean) * (std::log(sizes_[c]) - pool.log_mean);
      pool.log_sd = pool.cells.size() > 1 ? std::sqrt(square / (pool.cells.size() - 1)) : 0.0;
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

std::vector<double> LibrarySizePools::draw_all(const std::vector<std::vector<int>>& codes, const std::string& method,
                                               std::mt19937_64& rng, const std::vector<int>& detected) const {
  check_library_size_method(method);
  std::vector<double> sizes(codes.size());
  if (method == "matched") {
    if (!has_detected()) {
      throw std::invalid_argument("library_size 'matched' needs the training cells' detected genes, which this model "
                                  "does not hold (saved by an older exprflow, or not a gene-space model)");
    }
    if (detected.size() != codes.size() || std::any_of(detected.begin(), detected.end(), [](int d) { return d < 0; })) {
      throw std::invalid_argument("library_size 'matched' needs the generated cells' detected genes");
    }
    // The call's cells by the pool they draw from (pools live in cache_,
    // whose nodes keep their address), in the order they were asked for.
    std::map<const Pool*, std::vector<int>> members;
    std::vector<const Pool*> order;
    for (size_t i = 0; i < codes.size(); ++i) {
      const Pool* pool = &pool_for(codes[i]);
      auto [it, inserted] = members.try_emplace(pool);
      if (inserted) order.push_back(pool);
      it->second.push_back(static_cast<int>(i));
    }
    for (const Pool* pool : order) draw_matched(*pool, members[pool], detected, rng, sizes);
    return sizes;
  }
  for (size_t i = 0; i < codes.size(); ++i) {
    const Pool& pool = pool_for(codes[i]);
    if (method == "empirical") {
      std::uniform_int_distribution<size_t> pick(0, pool.cells.size() - 1);
      sizes[i] = sizes_[pool.cells[pick(rng)]];
    } else {  // "lognormal"
      std::normal_distribution<double> normal(pool.log_mean, pool.log_sd);
      sizes[i] = std::exp(normal(rng));
    }
  }
  return sizes;
}

double LibrarySizePools::draw(const std::vector<int>& codes, const std::string& method, std::mt19937_64& rng,
                              int detected) const {
  return draw_all({codes}, method, rng, detected < 0 ? std::vector<int>{} : std::vector<int>{detected})[0];
}

void LibrarySizePools::draw_matched(const Pool& pool, const std::vector<int>& members,
                                    const std::vector<int>& detected, std::mt19937_64& rng,
                                    std::vector<double>& sizes) const {
  // Rank the members by detected genes, ties in random order.
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<std::pair<int, double>> keys;  // (detected, tie-break)
  keys.reserve(members.size());
  for (int i : members) keys.emplace_back(detected[i], uniform(rng));
  std::vector<size_t> by_rank(members.size());
  for (size_t r = 0; r < by_rank.size(); ++r) by_rank[r] = r;
  std::sort(by_rank.begin(), by_rank.end(), [&keys](size_t a, size_t b) { return keys[a] < keys[b]; });
  // The member of rank r takes the pool's cell at quantile (r + u) / n,
  // u uniform: over u and r together that quantile is uniform on (0, 1),
  // so each pool cell is drawn equally often in expectation.
  const std::vector<int>& sorted = pool.by_detected;
  const double n = static_cast<double>(members.size());
  for (size_t r = 0; r < by_rank.size(); ++r) {
    const double q = (static_cast<double>(r) + uniform(rng)) / n;  // [0, 1)
    const size_t at = std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
    sizes[members[by_rank[r]]] = sizes_[sorted[at]];
  }
}

}  // namespace exprflow
