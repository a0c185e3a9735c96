#include "dynamics/population_coupling.hpp"

#include <cmath>
#include <stdexcept>

namespace exprflow {

Tensor sinkhorn_coupling(const Tensor& a, const Tensor& b, double epsilon_ratio, int iterations) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1) || a.size(0) == 0 || b.size(0) == 0) {
    throw std::invalid_argument("sinkhorn_coupling: a and b must be non-empty (n, d) and (m, d)");
  }
  if (!(epsilon_ratio > 0)) throw std::invalid_argument("sinkhorn_coupling: epsilon_ratio must be positive");
  const Tensor cost = at::cdist(a, b).pow(2);  // (n, m)
  const double epsilon = epsilon_ratio * std::max(cost.mean().item<double>(), 1e-12);
  const int64_t n = a.size(0), m = b.size(0);
  const double log_a = -std::log(static_cast<double>(n)), log_b = -std::log(static_cast<double>(m));
  Tensor f = at::zeros({n}, cost.options()), g = at::zeros({m}, cost.options());  // dual potentials
  for (int i = 0; i < iterations; ++i) {
    f = epsilon * (log_a - at::logsumexp((g.unsqueeze(0) - cost) / epsilon, 1));  // (n,)
    g = epsilon * (log_b - at::logsumexp((f.unsqueeze(1) - cost) / epsilon, 0));  // (m,)
  }
  const Tensor plan = at::exp((f.unsqueeze(1) + g.unsqueeze(0) - cost) / epsilon);  // (n, m)
  return plan / plan.sum();
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
