#include "dynamics/population_coupling.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace exprflow {

namespace {

void check_coupling_inputs(const Tensor& a, const Tensor& b, double epsilon_ratio) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1) || a.size(0) == 0 || b.size(0) == 0) {
    throw std::invalid_argument("sinkhorn_coupling: a and b must be non-empty (n, d) and (m, d)");
  }
  if (!(epsilon_ratio > 0)) throw std::invalid_argument("sinkhorn_coupling: epsilon_ratio must be positive");
}

}  // namespace

Tensor sinkhorn_coupling_reference(const Tensor& a, const Tensor& b, double epsilon_ratio, int iterations) {
  check_coupling_inputs(a, b, epsilon_ratio);
  const Tensor cost = at::cdist(a.to(at::kDouble), b.to(at::kDouble)).pow(2);  // (n, m)
  const double epsilon = epsilon_ratio * std::max(cost.mean().item<double>(), 1e-12);
  const int64_t n = a.size(0), m = b.size(0);
  const double log_a = -std::log(static_cast<double>(n)), log_b = -std::log(static_cast<double>(m));
  Tensor f = at::zeros({n}, cost.options()), g = at::zeros({m}, cost.options());  // dual potentials
  for (int i = 0; i < iterations; ++i) {
    f = epsilon * (log_a - at::logsumexp((g.unsqueeze(0) - cost) / epsilon, 1));  // (n,)
    g = epsilon * (log_b - at::logsumexp((f.unsqueeze(1) - cost) / epsilon, 0));  // (m,)
  }
  const Tensor plan = at::exp((f.unsqueeze(1) + g.unsqueeze(0) - cost) / epsilon);  // (n, m)
  return (plan / plan.sum()).to(a.scalar_type());
}

Tensor sinkhorn_coupling(const Tensor& a, const Tensor& b, double epsilon_ratio, int iterations) {
  check_coupling_inputs(a, b, epsilon_ratio);
  // The same iterations as the reference in the scaling domain, plain loops
  // in double: a minibatch coupling is small (128 x 128), where LibTorch's
  // per-op overhead made the log-domain iterations most of a training step.
  const Tensor cost_tensor = at::cdist(a.to(at::kDouble), b.to(at::kDouble)).pow(2).contiguous();  // (n, m)
  const int64_t n = a.size(0), m = b.size(0);
  const double* cost = cost_tensor.data_ptr<double>();
  double total = 0;
  for (int64_t k = 0; k < n * m; ++k) total += cost[k];
  const double epsilon = epsilon_ratio * std::max(total / static_cast<double>(n * m), 1e-12);
  // Kernel exp(-(C_ij - min_j C_ij) / epsilon): each row's scale is absorbed
  // by its u, so every row keeps an entry of 1. Kept both ways round so that
  // both updates run along contiguous memory (and vectorise).
  std::vector<double> kernel(static_cast<size_t>(n * m)), transposed(static_cast<size_t>(n * m));
  for (int64_t i = 0; i < n; ++i) {
    const double* row = cost + i * m;
    double low = row[0];
    for (int64_t j = 1; j < m; ++j) low = std::min(low, row[j]);
    for (int64_t j = 0; j < m; ++j) {
      kernel[i * m + j] = transposed[j * n + i] = std::exp(-(row[j] - low) / epsilon);
    }
  }
  std::vector<double> u(n, 1.0), v(m, 1.0), row_sum(n), column_sum(m);
  const double row_mass = 1.0 / static_cast<double>(n), column_mass = 1.0 / static_cast<double>(m);
  for (int it = 0; it < iterations; ++it) {
    std::fill(row_sum.begin(), row_sum.end(), 0.0);  // K v
    for (int64_t j = 0; j < m; ++j) {
      const double* column = transposed.data() + j * n;
      for (int64_t i = 0; i < n; ++i) row_sum[i] += column[i] * v[j];
    }
    // Converged: the rows already carry their mass (the columns do after
    // every v update), so further iterations change nothing that matters.
    if (it > 0 && it % 10 == 0) {
      double worst = 0;
      for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(u[i] * row_sum[i] * n - 1.0));
      if (worst < 1e-7) break;
    }
    for (int64_t i = 0; i < n; ++i) u[i] = row_mass / row_sum[i];
    std::fill(column_sum.begin(), column_sum.end(), 0.0);  // K^T u
    for (int64_t i = 0; i < n; ++i) {
      const double* row = kernel.data() + i * m;
      for (int64_t j = 0; j < m; ++j) column_sum[j] += row[j] * u[i];
    }
    for (int64_t j = 0; j < m; ++j) v[j] = column_mass / column_sum[j];
  }
  Tensor plan = at::empty({n, m}, at::kDouble);  // (n, m)
  double* out = plan.data_ptr<double>();
  double mass = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) mass += out[i * m + j] = u[i] * kernel[i * m + j] * v[j];
  }
  // A target cell far from every source cell underflows its whole column of
  // the kernel: the log domain handles what the scaling domain cannot.
  if (!std::isfinite(mass) || !(mass > 0)) return sinkhorn_coupling_reference(a, b, epsilon_ratio, iterations);
  return (plan / mass).to(a.scalar_type());
}

Tensor sample_chains(const std::vector<Tensor>& populations, int64_t batch, double epsilon_ratio,
                     at::Generator& generator) {
  if (populations.size() < 2) throw std::invalid_argument("sample_chains: needs at least two populations");
  auto draw = [&](const Tensor& population) {  // `batch` cells with replacement: (batch, d)
    const Tensor rows = at::randint(population.size(0), {batch}, generator, at::TensorOptions().dtype(at::kLong));
    return population.index_select(0, rows);
  };
  std::vector<Tensor> links{draw(populations[0])};
  for (size_t k = 1; k < populations.size(); ++k) {
    const Tensor candidates = draw(populations[k]);                              // (batch, d)
    const Tensor plan = sinkhorn_coupling(links.back(), candidates, epsilon_ratio);  // (batch, batch)
    // Each chain continues to a cell drawn from its row of the coupling.
    const Tensor next = at::multinomial(plan / plan.sum(1, true), 1, false, generator).squeeze(1);  // (batch,)
    links.push_back(candidates.index_select(0, next));
  }
  return at::stack(links, 1);  // (batch, K, d)
}

}  // namespace exprflow
