#include "data/covariate_centroids.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

namespace exprflow {

CovariateCentroids::CovariateCentroids(std::vector<std::string> covariate_names, int dims)
    : names_(std::move(covariate_names)), dims_(dims) {}

void CovariateCentroids::clear() {
  groups_.clear();
  cache_.clear();
}

void CovariateCentroids::add(const std::vector<int>& codes, const float* vector) {
  if (codes.size() != names_.size()) {
    throw std::invalid_argument("a centroid needs " + std::to_string(names_.size()) + " covariate codes, got " +
                                std::to_string(codes.size()));
  }
  Group& group = groups_[codes];
  if (group.sum.empty()) group.sum.assign(dims_, 0.0);
  for (int j = 0; j < dims_; ++j) group.sum[j] += vector[j];
  ++group.count;
  cache_.clear();
}

bool CovariateCentroids::pooled_mean(const std::vector<int>& pattern, std::vector<double>& mean) const {
  mean.assign(dims_, 0.0);
  long count = 0;
  for (const auto& [codes, group] : groups_) {
    bool match = true;
    for (size_t k = 0; k < codes.size() && match; ++k) match = pattern[k] < 0 || pattern[k] == codes[k];
    if (!match) continue;
    for (int j = 0; j < dims_; ++j) mean[j] += group.sum[j];
    count += group.count;
  }
  if (count == 0) return false;
  for (double& m : mean) m /= count;
  return true;
}

bool CovariateCentroids::has_level(int covariate, int code) const {
  for (const auto& [codes, group] : groups_) {
    if (codes.at(covariate) == code && group.count > 0) return true;
  }
  return false;
}

long CovariateCentroids::cells_of(const std::vector<int>& codes) const {
  const auto it = groups_.find(codes);
  return it == groups_.end() ? 0 : it->second.count;
}

std::vector<int> CovariateCentroids::nearest_seen(const std::vector<int>& codes,
                                                  const std::vector<bool>& movable) const {
  if (codes.size() != names_.size() || movable.size() != names_.size()) {
    throw std::invalid_argument("nearest_seen needs " + std::to_string(names_.size()) + " codes and flags");
  }
  for (int j = static_cast<int>(codes.size()) - 1; j >= 0; --j) {
    if (!movable[j]) continue;
    const std::vector<int>* best = nullptr;
    long most = 0;
    for (const auto& [other, group] : groups_) {  // ascending codes: the first of equal counts is the lowest
      bool rest_equal = other[j] != codes[j] && other[j] >= 0;
      for (size_t k = 0; k < codes.size() && rest_equal; ++k) rest_equal = static_cast<int>(k) == j || other[k] == codes[k];
      if (rest_equal && group.count > most) {
        best = &other;
        most = group.count;
      }
    }
    if (best) return *best;
  }
  return {};
}

const std::vector<float>& CovariateCentroids::shift(const std::vector<int>& from, const std::vector<int>& to) const {
  if (from.size() != names_.size() || to.size() != names_.size()) {
    throw std::invalid_argument("a latent shift needs " + std::to_string(names_.size()) + " covariate codes per end");
  }
  auto key = std::make_pair(from, to);
  auto it = cache_.find(key);
  if (it == cache_.end()) it = cache_.emplace(key, compute_shift(from, to)).first;
  return it->second;
}

std::vector<float> CovariateCentroids::compute_shift(const std::vector<int>& from, const std::vector<int>& to) const {
  if (groups_.empty()) throw std::invalid_argument("the model holds no latent centroids (is it trained?)");
  const size_t k = names_.size();
  std::vector<bool> changed(k);
  bool any = false;
  for (size_t a = 0; a < k; ++a) any |= (changed[a] = from[a] != to[a]);
  std::vector<float> out(dims_, 0.0f);
  if (!any) return out;

  // Both ends of one context: the context's codes on the kept covariates,
  // `from` / `to` on the changed ones.
  auto ends = [&](const std::vector<int>& context) {
    std::vector<int> source = context, target = context;
    for (size_t a = 0; a < k; ++a) {
      if (changed[a]) {
        source[a] = from[a];
        target[a] = to[a];
      }
    }
    return std::make_pair(source, target);
  };
  // The context's mean at `to` minus its mean at `from` (`source_mean`: the latter).
  auto difference = [&](const std::vector<int>& context, std::vector<double>& delta, std::vector<double>& source_mean) {
    const auto [source, target] = ends(context);
    std::vector<double> b;
    if (!pooled_mean(source, source_mean) || !pooled_mean(target, b)) return false;
    for (int j = 0; j < dims_; ++j) delta[j] = b[j] - source_mean[j];
    return true;
  };

  std::vector<double> delta(dims_), source_mean;
  // 1. The cell's own context.
  std::vector<int> own = from;
  for (size_t a = 0; a < k; ++a) if (changed[a]) own[a] = -1;
  bool own_is_specific = true;
  for (size_t a = 0; a < k; ++a) own_is_specific &= changed[a] || own[a] >= 0;
  if (own_is_specific && difference(own, delta, source_mean)) {
    for (int j = 0; j < dims_; ++j) out[j] = static_cast<float>(delta[j]);
    return out;
  }
  // 2. Every context seen in training, weighted by how alike it starts (context_weights()).
  std::set<std::vector<int>> contexts;
  for (const auto& [codes, group] : groups_) {
    std::vector<int> context = codes;
    for (size_t a = 0; a < k; ++a) if (changed[a]) context[a] = -1;
    contexts.insert(context);
  }
  std::vector<std::vector<double>> deltas, sources;
  for (const auto& context : contexts) {
    bool specific = true;  // a context with an unknown level would pool others: step 3 does that
    for (size_t a = 0; a < k; ++a) specific &= changed[a] || context[a] >= 0;
    if (!specific) continue;
    if (!difference(context, delta, source_mean)) continue;
    deltas.push_back(delta);
    sources.push_back(source_mean);
  }
  if (!deltas.empty()) {
    std::vector<double> own_source;
    const bool own_seen = own_is_specific && pooled_mean(ends(own).first, own_source);
    const std::vector<double> weights = context_weights(sources, own_seen ? &own_source : nullptr);
    std::vector<double> total(dims_, 0.0);
    for (size_t c = 0; c < deltas.size(); ++c) {
      const double w = weights.empty() ? 1.0 : weights[c];
      for (int j = 0; j < dims_; ++j) total[j] += w * deltas[c][j];
    }
    const double sum = weights.empty() ? static_cast<double>(deltas.size()) : 1.0;
    for (int j = 0; j < dims_; ++j) out[j] = static_cast<float>(total[j] / sum);
    return out;
  }
  // 3. Pooled over every context.
  std::vector<int> anything(k, -1);
  const auto [source, target] = ends(anything);
  std::vector<double> a, b;
  for (const auto& [pattern, mean] : {std::make_pair(&source, &a), std::make_pair(&target, &b)}) {
    if (pooled_mean(*pattern, *mean)) continue;
    std::string which;
    for (size_t c = 0; c < k; ++c) {
      if (changed[c] && (*pattern)[c] >= 0) which += (which.empty() ? "'" : ", '") + names_[c] + "'";
    }
    throw std::invalid_argument("no training cell has the asked level of " + which +
                                ": a latent shift needs training cells at both ends");
  }
  for (int j = 0; j < dims_; ++j) out[j] = static_cast<float>(b[j] - a[j]);
  return out;
}

void CovariateCentroids::set_context_bandwidth(double bandwidth) {
  if (!(bandwidth > 0)) {  // also NaN
    throw std::invalid_argument("the context bandwidth must be positive (infinity: every context weighs the same)");
  }
  if (bandwidth != bandwidth_) cache_.clear();
  bandwidth_ = bandwidth;
}

std::vector<double> CovariateCentroids::context_weights(const std::vector<std::vector<double>>& sources,
                                                        const std::vector<double>* own) const {
  const size_t n = sources.size();
  if (std::isinf(bandwidth_) || !own || n < 2) return {};  // equal weights
  std::vector<double> weights(n);
  auto squared_distance = [&](const std::vector<double>& a, const std::vector<double>& b) {
    double sum = 0;
    for (int j = 0; j < dims_; ++j) sum += (a[j] - b[j]) * (a[j] - b[j]);
    return sum;
  };
  // The scale: the median distance between the contexts' own `from` means.
  std::vector<double> pairs;
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = a + 1; b < n; ++b) pairs.push_back(std::sqrt(squared_distance(sources[a], sources[b])));
  }
  std::nth_element(pairs.begin(), pairs.begin() + pairs.size() / 2, pairs.end());
  double median = pairs[pairs.size() / 2];
  if (pairs.size() % 2 == 0) median = (median + *std::max_element(pairs.begin(), pairs.begin() + pairs.size() / 2)) / 2;
  if (!(median > 0)) return {};  // every context starts at the same place
  const double h = bandwidth_ * median;
  std::vector<double> d2(n);
  for (size_t c = 0; c < n; ++c) d2[c] = squared_distance(sources[c], *own);
  const double nearest = *std::min_element(d2.begin(), d2.end());
  double total = 0;
  for (size_t c = 0; c < n; ++c) total += (weights[c] = std::exp(-(d2[c] - nearest) / (2 * h * h)));
  for (double& w : weights) w /= total;  // total >= 1: the nearest weighs exp(0)
  return weights;
}

CovariateCentroids::Table CovariateCentroids::table() const {
  Table t;
  for (const auto& [codes, group] : groups_) {
    t.codes.insert(t.codes.end(), codes.begin(), codes.end());
    for (double s : group.sum) t.means.push_back(static_cast<float>(s / group.count));
    t.counts.push_back(group.count);
  }
  return t;
}

void CovariateCentroids::restore(const Table& t) {
  const size_t k = names_.size(), n = t.counts.size();
  if (t.codes.size() != n * k || t.means.size() != n * static_cast<size_t>(dims_)) {
    throw std::invalid_argument("latent centroids: expected " + std::to_string(k) + " codes and " +
                                std::to_string(dims_) + " values for each of " + std::to_string(n) + " combinations");
  }
  clear();
  for (size_t g = 0; g < n; ++g) {
    if (t.counts[g] < 1) throw std::invalid_argument("latent centroids: a combination has no cells");
    Group& group = groups_[std::vector<int>(t.codes.begin() + g * k, t.codes.begin() + (g + 1) * k)];
    group.count = t.counts[g];
    group.sum.resize(dims_);
    for (int j = 0; j < dims_; ++j) group.sum[j] = static_cast<double>(t.means[g * dims_ + j]) * group.count;
  }
}

}  // namespace exprflow
