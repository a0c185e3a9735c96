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
  for (auto& p : pools_) p.clear();
}

void LibrarySizePools::add(int level, double size) {
  if (level >= 0) pools_.at(level).push_back(size);
  pools_.back().push_back(size);
}

const std::vector<double>& LibrarySizePools::pool_for(int level) const {
  if (level >= 0 && !pools_.at(level).empty()) return pools_[level];
  if (pools_.back().empty()) throw std::invalid_argument("the model holds no library sizes (is it trained?)");
  return pools_.back();
}

double LibrarySizePools::draw(int level, const std::string& method, std::mt19937_64& rng) const {
  check_library_size_method(method);
  const std::vector<double>& pool = pool_for(level);
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
