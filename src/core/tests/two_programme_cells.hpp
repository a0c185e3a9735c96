// Small synthetic count data with a known structure, for model tests: cells
// alternate between two conditions, and the first half of the genes is the
// high programme of condition 0, the second half that of condition 1.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/expression_source.hpp"

namespace exprflow {

struct TwoProgrammeCells {
  std::vector<double> counts;  // genes x cells, column-major
  std::vector<int> conditions;  // 0, 1, 0, 1, ...
  std::unique_ptr<DenseExpressionSource> source;
};

struct TwoProgrammeSettings {
  int n_genes = 12, n_cells = 80;
  uint64_t seed = 5;
  double high = 20.0, low = 3.0;  // Poisson means of a cell's own / the other programme
  // Cell c's means are multiplied by a scale rising linearly from the first
  // to the last cell (different library sizes), and `offset` is added.
  double first_scale = 1.0, last_scale = 1.0;
  int offset = 0;
};

inline TwoProgrammeCells two_programme_cells(const TwoProgrammeSettings& s) {
  TwoProgrammeCells d;
  std::mt19937_64 rng(s.seed);
  d.counts.resize(static_cast<size_t>(s.n_genes) * s.n_cells);
  for (int c = 0; c < s.n_cells; ++c) {
    d.conditions.push_back(c % 2);
    const double scale = s.first_scale + (s.last_scale - s.first_scale) * c / (s.n_cells - 1);
    for (int g = 0; g < s.n_genes; ++g) {
      const double mu = scale * ((g < s.n_genes / 2) == (c % 2 == 0) ? s.high : s.low);
      d.counts[static_cast<size_t>(c) * s.n_genes + g] = s.offset + std::poisson_distribution<int>(mu)(rng);
    }
  }
  std::vector<std::string> genes;
  for (int g = 0; g < s.n_genes; ++g) genes.push_back("g" + std::to_string(g));
  d.source = std::make_unique<DenseExpressionSource>(genes, s.n_cells, d.counts.data());
  return d;
}

}  // namespace exprflow
