#include "decode/count_decoding.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace exprflow {

void expected_counts(const float* logcounts, int n_genes, double library_size, double* mu) {
  double total = 0;
  for (int g = 0; g < n_genes; ++g) total += (mu[g] = std::expm1(std::max(logcounts[g], 0.0f)));
  for (int g = 0; g < n_genes; ++g) mu[g] = total > 0 ? mu[g] / total * library_size : 0.0;
}

void round_expected_counts(const double* mu, int n_genes, std::mt19937_64& rng, int32_t* counts) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int g = 0; g < n_genes; ++g) {
    const double whole = std::floor(mu[g]);
    counts[g] = static_cast<int32_t>(whole) + (unit(rng) < mu[g] - whole ? 1 : 0);
  }
}

void round_counts(const float* logcounts, int n_genes, double library_size, std::mt19937_64& rng,
                  int32_t* counts) {
  std::vector<double> mu(n_genes);
  expected_counts(logcounts, n_genes, library_size, mu.data());
  round_expected_counts(mu.data(), n_genes, rng, counts);
}

}  // namespace exprflow
