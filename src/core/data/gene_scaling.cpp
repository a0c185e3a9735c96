#include "data/gene_scaling.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "data/library_sizes.hpp"

namespace exprflow {

GeneScaling GeneScaling::fit(const ExpressionSource& data, const std::vector<int>& cells, std::vector<int>* detected) {
  if (cells.empty()) throw std::invalid_argument("gene scaling needs at least one cell");
  const int G = data.n_genes();
  std::vector<double> sum(G, 0.0), sum_sq(G, 0.0);
  GeneScaling s;
  s.min.assign(G, INFINITY);
  s.max.assign(G, -INFINITY);
  if (detected != nullptr) detected->clear();

  const size_t chunk = 256;  // densify a few cells at a time, never the matrix
  std::vector<float> buffer(chunk * G);
  for (size_t start = 0; start < cells.size(); start += chunk) {
    std::vector<int> part(cells.begin() + start, cells.begin() + std::min(cells.size(), start + chunk));
    data.fill_log_normalised(part, buffer.data());
    for (size_t b = 0; b < part.size(); ++b) {
      const float* row = buffer.data() + b * G;
      for (int g = 0; g < G; ++g) {
        sum[g] += row[g];
        sum_sq[g] += double(row[g]) * row[g];
        s.min[g] = std::min(s.min[g], row[g]);
        s.max[g] = std::max(s.max[g], row[g]);
      }
      if (detected != nullptr) detected->push_back(detected_genes(row, G));
    }
  }
  const double n = static_cast<double>(cells.size());
  s.mean.resize(G);
  s.sd.resize(G);
  for (int g = 0; g < G; ++g) {
    const double m = sum[g] / n;
    const double var = std::max(sum_sq[g] / n - m * m, 0.0);
    s.mean[g] = static_cast<float>(m);
    s.sd[g] = std::max(static_cast<float>(std::sqrt(var)), kMinSd);
  }
  return s;
}

}  // namespace exprflow
