#include "api/model_inputs.hpp"

#include <stdexcept>

namespace exprflow {

std::vector<CovariateSpec> condition_covariates(size_t n_levels) {
  if (n_levels == 0) return {};
  return {{kConditionCovariate, static_cast<int64_t>(n_levels)}};
}

void check_model_genes(const std::vector<std::string>& genes, const ExpressionSource& data) {
  if (data.genes() == genes) return;
  if (data.n_genes() != static_cast<int>(genes.size())) {
    throw std::invalid_argument("the data has " + std::to_string(data.n_genes()) +
                                " genes but the model was built for " + std::to_string(genes.size()));
  }
  for (size_t g = 0; g < genes.size(); ++g) {
    if (data.genes()[g] != genes[g]) {
      throw std::invalid_argument("gene " + std::to_string(g + 1) + " of the data is '" + data.genes()[g] +
                                  "' but the model expects '" + genes[g] + "'");
    }
  }
}

CovariateColumns condition_columns(const std::vector<int>& levels, size_t n_cells, size_t n_levels) {
  if (n_levels == 0) {
    for (int level : levels) {
      if (level != -1) throw std::invalid_argument("the model is unconditional: every condition index must be -1");
    }
    return {};
  }
  std::vector<int> codes = levels;
  if (codes.empty()) codes.assign(n_cells, -1);
  if (codes.size() != n_cells) {
    throw std::invalid_argument("one condition per cell is needed (" + std::to_string(n_cells) + " cells, " +
                                std::to_string(codes.size()) + " conditions)");
  }
  for (int level : codes) {
    if (level < -1 || level >= static_cast<int>(n_levels)) {
      throw std::invalid_argument("condition index " + std::to_string(level) + " outside the model's " +
                                  std::to_string(n_levels) + " levels");
    }
  }
  return {{kConditionCovariate, codes}};
}

}  // namespace exprflow
