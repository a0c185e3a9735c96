// Per-gene statistics of log-normalised expression over a set of cells.
//
// Diffusion in gene space works on standardised values ((x - mean) / sd):
// genes then share one noise scale, and the observed per-gene range becomes
// the clipping box for x_0 predictions during sampling. Torch-free.
#pragma once

#include <vector>

#include "data/expression_source.hpp"

namespace exprflow {

struct GeneScaling {
  std::vector<float> mean, sd, min, max;  // per gene, log-normalised scale

  // sd below this floor is raised to it: an almost-constant gene would
  // otherwise turn tiny differences into huge standardised values.
  static constexpr float kMinSd = 0.05f;

  // `detected`, where given, receives each of `cells`' detected genes
  // (detected_genes(), data/library_sizes.hpp) from the same pass.
  static GeneScaling fit(const ExpressionSource& data, const std::vector<int>& cells,
                         std::vector<int>* detected = nullptr);
};

}  // namespace exprflow
