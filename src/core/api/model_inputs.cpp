#include "api/model_inputs.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

namespace exprflow {

std::vector<std::string> perturbation_members(const Covariate& covariate, const std::string& level) {
  std::vector<std::string> members;
  if (level == covariate.control) return members;
  size_t start = 0;
  while (true) {
    const size_t plus = level.find('+', start);
    members.push_back(level.substr(start, plus == std::string::npos ? std::string::npos : plus - start));
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return members;
}

std::vector<std::string> perturbation_member_names(const Covariate& covariate) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const std::string& level : covariate.levels) {
    for (const std::string& m : perturbation_members(covariate, level)) {
      if (seen.insert(m).second) names.push_back(m);
    }
  }
  return names;
}

namespace {

void check_perturbation(const Covariate& c) {
  const std::string where = "perturbation covariate '" + c.name + "'";
  if (c.control.empty()) throw std::invalid_argument(where + " needs a control level");
  if (std::find(c.levels.begin(), c.levels.end(), c.control) == c.levels.end()) {
    throw std::invalid_argument(where + " has no level '" + c.control + "' (its control)");
  }
  if (!(c.dose_scale > 0) || !std::isfinite(c.dose_scale)) throw std::invalid_argument(where + " needs a positive dose scale");
  for (const std::string& level : c.levels) {
    const std::vector<std::string> members = perturbation_members(c, level);
    std::set<std::string> distinct;
    for (const std::string& m : members) {
      if (m.empty()) throw std::invalid_argument(where + ": level '" + level + "' has an empty member");
      if (!distinct.insert(m).second) {
        throw std::invalid_argument(where + ": level '" + level + "' names '" + m + "' twice");
      }
    }
  }
  if (perturbation_member_names(c).empty()) throw std::invalid_argument(where + " has no perturbed level");
}

}  // namespace

void check_covariates(const std::vector<Covariate>& covariates) {
  std::set<std::string> seen;
  for (const Covariate& c : covariates) {
    if (c.name.empty()) throw std::invalid_argument("covariate names must not be empty");
    if (c.name.find('/') != std::string::npos) throw std::invalid_argument("covariate name '" + c.name + "' holds a '/'");
    if (!seen.insert(c.name).second) throw std::invalid_argument("covariate '" + c.name + "' is given twice");
    if (c.levels.empty()) throw std::invalid_argument("covariate '" + c.name + "' has no levels");
    if (c.perturbation_set) check_perturbation(c);
    if (c.dosed && !c.perturbation_set) {
      throw std::invalid_argument("covariate '" + c.name + "' has doses but is not a perturbation covariate");
    }
  }
}

std::vector<std::vector<int64_t>> level_member_indices(const Covariate& covariate,
                                                       const std::vector<std::string>& levels, bool skip_unknown) {
  const std::vector<std::string> names = perturbation_member_names(covariate);
  std::vector<std::vector<int64_t>> out;
  for (const std::string& level : levels) {
    std::vector<int64_t> indices;
    for (const std::string& m : perturbation_members(covariate, level)) {
      auto it = std::find(names.begin(), names.end(), m);
      if (it == names.end()) {
        if (skip_unknown) continue;
        throw std::invalid_argument("perturbation covariate '" + covariate.name + "': '" + m + "' (in '" + level +
                                    "') is not a member any of its training levels has");
      }
      indices.push_back(it - names.begin());
    }
    out.push_back(std::move(indices));
  }
  return out;
}

std::vector<PerturbationLevels> perturbation_levels(const std::vector<Covariate>& covariates,
                                                    const CellCovariates& cells) {
  std::vector<PerturbationLevels> out;
  for (size_t k = 0; k < covariates.size(); ++k) {
    const Covariate& c = covariates[k];
    if (!c.perturbation_set) continue;
    PerturbationLevels p;
    p.covariate = static_cast<int>(k);
    p.names = c.levels;
    auto extra = cells.extra_levels.find(c.name);
    if (extra != cells.extra_levels.end()) p.names.insert(p.names.end(), extra->second.begin(), extra->second.end());
    p.control = static_cast<int>(std::find(c.levels.begin(), c.levels.end(), c.control) - c.levels.begin());
    for (const std::string& level : p.names) {
      std::vector<std::string> members = perturbation_members(c, level);
      std::vector<int> singles;
      for (const std::string& m : members) {
        auto it = std::find(c.levels.begin(), c.levels.end(), m);
        singles.push_back(it == c.levels.end() ? -1 : static_cast<int>(it - c.levels.begin()));
      }
      p.singles.push_back(std::move(singles));
      p.members.push_back(std::move(members));
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<CovariateSpec> covariate_specs(const std::vector<Covariate>& covariates) {
  std::vector<CovariateSpec> specs;
  for (const Covariate& c : covariates) {
    CovariateSpec spec{c.name, static_cast<int64_t>(c.levels.size())};
    if (c.perturbation_set) {
      spec.perturbation_set = true;
      spec.n_members = static_cast<int64_t>(perturbation_member_names(c).size());
      spec.level_members = level_member_indices(c, c.levels);
      spec.dosed = c.dosed;
      spec.dose_scale = c.dose_scale;
    }
    specs.push_back(std::move(spec));
  }
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

void check_codes(const std::vector<int>& codes, size_t n_cells, const Covariate& covariate, size_t n_extra = 0) {
  if (codes.size() != n_cells) {
    throw std::invalid_argument("covariate '" + covariate.name + "' needs one code per cell (" +
                                std::to_string(n_cells) + " cells, " + std::to_string(codes.size()) + " codes)");
  }
  const int n_levels = static_cast<int>(covariate.levels.size() + n_extra);
  for (int code : codes) {
    if (code < -1 || code >= n_levels) {
      throw std::invalid_argument("code " + std::to_string(code) + " of covariate '" + covariate.name +
                                  "' is outside its " + std::to_string(n_levels) + " levels");
    }
  }
}

// The model's covariates' codes, checked (perturbations: their level codes).
CovariateColumns categorical_columns(const CellCovariates& cells, size_t n_cells,
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
      auto extra = cells.extra_levels.find(c.name);
      check_codes(codes, n_cells, c, extra == cells.extra_levels.end() ? 0 : extra->second.size());
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

// The members (and doses) of every cell of a perturbation covariate, from
// its codes into the model's levels followed by `extra` levels.
SetColumn set_column(const Covariate& c, const std::vector<int>& codes, const std::vector<std::string>& extra,
                     const CellDoses* doses, bool skip_unknown_members) {
  std::vector<std::string> levels = c.levels;
  levels.insert(levels.end(), extra.begin(), extra.end());
  const std::vector<std::vector<int64_t>> level_members = level_member_indices(c, levels, skip_unknown_members);
  SetColumn column;
  column.width = 1;
  for (const auto& m : level_members) column.width = std::max<int64_t>(column.width, static_cast<int64_t>(m.size()));
  const size_t n = codes.size(), k = static_cast<size_t>(column.width);
  column.members.assign(n * k, -1);
  if (c.dosed) column.doses.assign(n * k, 1.0f);
  const std::string where = "the doses of perturbation covariate '" + c.name + "'";
  if (doses) {
    if (doses->width < 0 || doses->values.size() != n * static_cast<size_t>(doses->width)) {
      throw std::invalid_argument(where + " need " + std::to_string(n) + " cells x " + std::to_string(doses->width) +
                                  " values, not " + std::to_string(doses->values.size()));
    }
    for (float d : doses->values) {
      if (!std::isfinite(d) || d < 0) throw std::invalid_argument(where + " must be finite and >= 0");
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (codes[i] < 0) continue;
    const std::vector<int64_t>& members = level_members[codes[i]];
    if (doses && members.size() > static_cast<size_t>(doses->width)) {
      throw std::invalid_argument(where + " give " + std::to_string(doses->width) + " per cell but level '" +
                                  levels[codes[i]] + "' has " + std::to_string(members.size()) + " members");
    }
    for (size_t j = 0; j < members.size(); ++j) {
      column.members[i * k + j] = static_cast<int>(members[j]);
      if (doses) column.doses[i * k + j] = doses->values[i * doses->width + j];
    }
  }
  return column;
}

void check_perturbation_inputs(const CellCovariates& cells, const std::vector<Covariate>& covariates) {
  const auto find = [&](const std::string& name) -> const Covariate* {
    for (const Covariate& c : covariates) {
      if (c.name == name) return &c;
    }
    return nullptr;
  };
  for (const auto& [name, extra] : cells.extra_levels) {
    const Covariate* c = find(name);
    if (!c || !c->perturbation_set) {
      throw std::invalid_argument("extra levels are given for '" + name + "', which is not a perturbation covariate");
    }
  }
  for (const auto& [name, doses] : cells.doses) {
    const Covariate* c = find(name);
    if (!c || !c->dosed) throw std::invalid_argument("doses are given for '" + name + "', which has no doses");
  }
}

}  // namespace

CovariateColumns covariate_columns(const CellCovariates& cells, size_t n_cells,
                                   const std::vector<Covariate>& covariates, bool skip_unknown_members) {
  CovariateColumns columns = categorical_columns(cells, n_cells, covariates);
  check_perturbation_inputs(cells, covariates);
  for (const Covariate& c : covariates) {
    if (!c.perturbation_set) continue;
    auto extra = cells.extra_levels.find(c.name);
    const std::vector<std::string> none;
    const std::vector<std::string>& extra_levels = extra == cells.extra_levels.end() ? none : extra->second;
    auto doses = cells.doses.find(c.name);
    columns.sets[c.name] =
        set_column(c, columns.at(c.name), extra_levels, doses == cells.doses.end() ? nullptr : &doses->second,
                   skip_unknown_members);
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
