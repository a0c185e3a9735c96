#include "data/nmf.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace exprflow {

NmfFactors nmf(const Tensor& x, int64_t k, int iterations, uint64_t seed) {
  if (x.dim() != 2 || x.size(0) < 1 || x.size(1) < 1) throw std::invalid_argument("nmf needs a non-empty matrix");
  if (k < 1) throw std::invalid_argument("nmf: the number of modules must be at least 1");
  if (x.min().item<double>() < 0) throw std::invalid_argument("nmf needs a non-negative matrix");
  const int64_t n = x.size(0), G = x.size(1);
  at::Generator generator = at::detail::createCPUGenerator(seed);
  // Scaled so that W H starts at the data's mean (scikit-learn's "random" init).
  const double scale = std::sqrt(std::max(x.mean().item<double>(), kNmfEpsilon) / static_cast<double>(k));
  const auto options = x.options();
  Tensor w = at::rand({n, k}, generator, options) * scale;  // (n, k)
  Tensor h = at::rand({k, G}, generator, options) * scale;  // (k, G)
  for (int i = 0; i < iterations; ++i) {
    h = h * w.t().matmul(x) / (w.t().matmul(w).matmul(h) + kNmfEpsilon);  // (k, G)
    w = w * x.matmul(h.t()) / (w.matmul(h.matmul(h.t())) + kNmfEpsilon);  // (n, k)
  }
  return {w, h};
}

double nmf_relative_error(const Tensor& x, const NmfFactors& f) {
  return ((x - f.cell_scores.matmul(f.gene_weights)).norm() / x.norm()).item<double>();
}

}  // namespace exprflow
