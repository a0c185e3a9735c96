#include "api/model_inputs.hpp"

#include <map>
#include <set>
#include <stdexcept>

namespace exprflow {

void check_covariates(const std::vector<Covariate>& covariates) {
  std::set<std::string> seen;
  for (const Covariate& c : covariates) {
    if (c.name.empty()) throw std::invalid_argument("covariate names must not be empty");
    if (!seen.insert(c.name).second) throw std::invalid_argument("covariate '" + c.name + "' is given twice");
    if (c.levels.empty()) throw std::invalid_argument("covariate '" + c.name + "' has no levels");
  }
}

std::vector<CovariateSpec> covariate_specs(const std::vector<Covariate>& covariates) {
  std::vector<CovariateSpec> specs;
  for (const Covariate& c : covariates) specs.push_back({c.name, static_cast<int64_t>(c.levels.size())});
  return specs;
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

namespace {

void check_codes(const std::vector<int>& codes, size_t n_cells, const Covariate& covariate) {
  if (codes.size() != n_cells) {
    throw std::invalid_argument("covariate '" + covariate.name + "' needs one code per cell (" +
                                std::to_string(n_cells) + " cells, " + std::to_string(codes.size()) + " codes)");
  }
  const int n_levels = static_cast<int>(covariate.levels.size());
  for (int code : codes) {
    if (code < -1 || code >= n_levels) {
      throw std::invalid_argument("code " + std::to_string(code) + " of covariate '" + covariate.name +
                                  "' is outside its " + std::to_string(n_levels) + " levels");
    }
  }
}

}  // namespace

CovariateColumns covariate_columns(const CellCovariates& cells, size_t n_cells,
                                   const std::vector<Covariate>& covariates) {
  CovariateColumns columns;
  if (!cells.by_name.empty()) {
    for (const auto& [name, codes] : cells.by_name) {
      bool known = false;
      for (const Covariate& c : covariates) known = known || c.name == name;
      if (!known) {
        throw std::invalid_argument("the model has no covariate '" + name + "'" +
                                    (covariates.empty() ? std::string(" (it is unconditional)")
                                                        : "; its covariates are " + covariate_names(covariates)));
      }
    }
    for (const Covariate& c : covariates) {
      auto it = cells.by_name.find(c.name);
      std::vector<int> codes = it == cells.by_name.end() ? std::vector<int>(n_cells, -1) : it->second;
      check_codes(codes, n_cells, c);
      columns[c.name] = std::move(codes);
    }
    return columns;
  }
  if (covariates.empty()) {
    for (int code : cells.condition) {
      if (code != -1) throw std::invalid_argument("the model is unconditional: every condition index must be -1");
    }
    return columns;
  }
  if (covariates.size() > 1) {
    bool all_null = true;
    for (int code : cells.condition) all_null = all_null && code == -1;
    if (!all_null) {
      throw std::invalid_argument("the model has several covariates (" + covariate_names(covariates) +
                                  "): give each cell's codes by covariate name");
    }
  }
  for (const Covariate& c : covariates) {
    std::vector<int> codes = cells.condition.empty() ? std::vector<int>(n_cells, -1) : cells.condition;
    if (codes.size() != n_cells) {
      throw std::invalid_argument("one condition per cell is needed (" + std::to_string(n_cells) + " cells, " +
                                  std::to_string(codes.size()) + " conditions)");
    }
    check_codes(codes, n_cells, c);
    columns[c.name] = std::move(codes);
  }
  return columns;
}

std::vector<int> codes_of_cell(const CovariateColumns& columns, const std::vector<Covariate>& covariates, size_t i) {
  std::vector<int> codes;
  codes.reserve(covariates.size());
  for (const Covariate& c : covariates) codes.push_back(columns.at(c.name).at(i));
  return codes;
}

std::vector<int> combination_strata(const CovariateColumns& columns, const std::vector<Covariate>& covariates,
                                    size_t n_cells) {
  std::map<std::vector<int>, int> ids;
  std::vector<int> strata(n_cells);
  for (size_t i = 0; i < n_cells; ++i) {
    auto inserted = ids.emplace(codes_of_cell(columns, covariates, i), static_cast<int>(ids.size()));
    strata[i] = inserted.first->second;
  }
  return strata;
}

}  // namespace exprflow
