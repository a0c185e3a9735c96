#include "objective/ot_pairing.hpp"

#include <limits>
#include <stdexcept>

#include "data/covariate_groups.hpp"

namespace exprflow {

std::vector<int64_t> min_cost_assignment(const std::vector<double>& cost, int64_t n) {
  if (static_cast<int64_t>(cost.size()) != n * n) throw std::invalid_argument("cost matrix must be n x n");
  // Shortest augmenting paths with row potentials u and column potentials v
  // (1-based; column 0 is a virtual start).
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0.0), v(n + 1, 0.0);
  std::vector<int64_t> match(n + 1, 0), way(n + 1, 0);  // match[col] = row
  for (int64_t row = 1; row <= n; ++row) {
    match[0] = row;
    int64_t col0 = 0;
    std::vector<double> min_slack(n + 1, inf);
    std::vector<bool> used(n + 1, false);
    do {
      used[col0] = true;
      const int64_t r = match[col0];
      double delta = inf;
      int64_t col1 = 0;
      for (int64_t c = 1; c <= n; ++c) {
        if (used[c]) continue;
        const double slack = cost[(r - 1) * n + (c - 1)] - u[r] - v[c];
        if (slack < min_slack[c]) {
          min_slack[c] = slack;
          way[c] = col0;
        }
        if (min_slack[c] < delta) {
          delta = min_slack[c];
          col1 = c;
        }
      }
      for (int64_t c = 0; c <= n; ++c) {
        if (used[c]) {
          u[match[c]] += delta;
          v[c] -= delta;
        } else {
          min_slack[c] -= delta;
        }
      }
      col0 = col1;
    } while (match[col0] != 0);
    do {  // flip the augmenting path
      const int64_t col1 = way[col0];
      match[col0] = match[col1];
      col0 = col1;
    } while (col0 != 0);
  }
  std::vector<int64_t> result(n);
  for (int64_t c = 1; c <= n; ++c) result[match[c] - 1] = c - 1;
  return result;
}

Tensor pair_noise(const Tensor& x0, const Tensor& noise, const Covariates& covariates) {
  torch::NoGradGuard no_grad;
  const int64_t B = x0.size(0);
  Tensor cost_all = at::cdist(x0.to(at::kDouble), noise.to(at::kDouble)).pow(2).to(at::kCPU).contiguous();  // (B, B)
  auto c = cost_all.accessor<double, 2>();
  std::vector<int64_t> partner(B);
  for (const auto& members : covariate_groups(covariates, B)) {
    const int64_t n = static_cast<int64_t>(members.size());
    std::vector<double> cost(n * n);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) cost[i * n + j] = c[members[i]][members[j]];
    }
    const std::vector<int64_t> assignment = min_cost_assignment(cost, n);
    for (int64_t i = 0; i < n; ++i) partner[members[i]] = members[assignment[i]];
  }
  Tensor index = at::tensor(partner, at::TensorOptions().dtype(at::kLong)).to(noise.device());  // (B,)
  return noise.index_select(0, index);  // (B, G)
}

}  // namespace exprflow
