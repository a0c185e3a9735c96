#include "data/library_sizes.hpp"

#include <cmath>
#include <stdexcept>

namespace exprflow {

void check_library_size_method(const std::string& method) {
  if (method != "empirical" && method != "lognormal") {
    throw std::invalid_argument("library_size must be 'empirical' or 'lognormal', got '" + method + "'");
  }
}

void LibrarySizePools::clear() {
  sizes_.clear();
  codes_.clear();
  cache_.clear();
}

void LibrarySizePools::add(const std::vector<int>& codes, double size) {
  if (static_cast<int>(codes.size()) != n_covariates_) {
    throw std::invalid_argument("a library size needs " + std::to_string(n_covariates_) + " covariate codes, got " +
                                std::to_string(codes.size()));
  }
  sizes_.push_back(size);
  codes_.insert(codes_.end(), codes.begin(), codes.end());
  cache_.clear();
}

const std::vector<double>& LibrarySizePools::pool_for(std::vector<int> codes) const {
  if (sizes_.empty()) throw std::invalid_argument("the model holds no library sizes (is it trained?)");
  if (static_cast<int>(codes.size()) != n_covariates_) {
    throw std::invalid_argument("a library size draw needs " + std::to_string(n_covariates_) +
                                " covariate codes, got " + std::to_string(codes.size()));
  }
  for (int dropped = n_covariates_; dropped >= 0; --dropped) {
    auto it = cache_.find(codes);
    if (it == cache_.end()) {
      std::vector<double> pool;
      for (size_t cell = 0; cell < sizes_.size(); ++cell) {
        bool match = true;
        for (int k = 0; k < n_covariates_ && match; ++k) {
          match = codes[k] < 0 || codes[k] == codes_[cell * n_covariates_ + k];
        }
        if (match) pool.push_back(sizes_[cell]);
      }
      it = cache_.emplace(codes, std::move(pool)).first;
    }
    if (!it->second.empty()) return it->second;
    if (dropped > 0) codes[dropped - 1] = -1;  // fall back: forget the last covariate still asked for
  }
  throw std::logic_error("library size pools: all-wildcard pool is empty");  // unreachable: sizes_ is not empty
}

double LibrarySizePools::draw(const std::vector<int>& codes, const std::string& method, std::mt19937_64& rng) const {
  check_library_size_method(method);
  const std::vector<double>& pool = pool_for(codes);
  if (method == "empirical") {
    std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
    return pool[pick(rng)];
  }
  double mean = 0, square = 0;
  for (double s : pool) mean += std::log(s);
  mean /= pool.size();
  for (double s : pool) square += (std::log(s) - mean) * (std::log(s) - mean);
  const double sd = pool.size() > 1 ? std::sqrt(square / (pool.size() - 1)) : 0.0;
  std::normal_distribution<double> normal(mean, sd);
  return std::exp(normal(rng));
}

}  // namespace exprflow
