#include "decode/negative_binomial.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace exprflow {

std::vector<double> estimate_nb_theta(const ExpressionSource& data, const std::vector<int>& cells) {
  if (cells.empty()) throw std::invalid_argument("dispersion estimation needs at least one cell");
  const int G = data.n_genes();
  const std::vector<double>& lib = data.library_sizes();
  double mean_lib = 0;
  for (int c : cells) mean_lib += lib[c];
  mean_lib /= cells.size();

  std::vector<double> sum(G, 0.0), sum_sq(G, 0.0);
  double mean_inv_size = 0;
  size_t n_used = 0;
  const size_t chunk = 256;
  std::vector<float> buffer(chunk * G);
  for (size_t start = 0; start < cells.size(); start += chunk) {
    std::vector<int> part(cells.begin() + start, cells.begin() + std::min(cells.size(), start + chunk));
    data.fill_counts(part, buffer.data());
    for (size_t b = 0; b < part.size(); ++b) {
      const double size = lib[part[b]] / mean_lib;  // size factor s_c
      if (size <= 0) continue;
      mean_inv_size += 1.0 / size;
      ++n_used;
      const float* row = buffer.data() + b * G;
      for (int g = 0; g < G; ++g) {
        const double v = row[g] / size;
        sum[g] += v;
        sum_sq[g] += v * v;
      }
    }
  }
  if (n_used < 2) throw std::invalid_argument("dispersion estimation needs two cells with counts");
  mean_inv_size /= n_used;
  std::vector<double> theta(G, kPoissonTheta);
  for (int g = 0; g < G; ++g) {
    const double m = sum[g] / n_used;
    const double var = (sum_sq[g] - n_used * m * m) / (n_used - 1);
    const double excess = var - m * mean_inv_size;
    if (m > 0 && excess > 0) theta[g] = std::clamp(m * m / excess, 1e-3, kPoissonTheta);
  }
  return theta;
}

double nb_log_likelihood(const float* counts, const double* mu, int n_genes,
                         const std::vector<double>& theta) {
  double total = 0;
  for (int g = 0; g < n_genes; ++g) {
    const double y = counts[g], m = std::max(mu[g], kMinExpectedCount);
    if (theta[g] >= kPoissonTheta) {
      total += y * std::log(m) - m - std::lgamma(y + 1);
      continue;
    }
    const double th = theta[g];
    total += std::lgamma(y + th) - std::lgamma(th) - std::lgamma(y + 1) + th * std::log(th / (th + m)) +
             y * std::log(m / (th + m));
  }
  return total;
}

}  // namespace exprflow
