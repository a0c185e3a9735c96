#include "api/model_record.hpp"

#include <stdexcept>

#include "api/model_inputs.hpp"
#include "io/model_archive.hpp"
#include "models/compositions.hpp"
#include "runtime/device.hpp"

namespace exprflow {

ModelRecord::ModelRecord(Options spec, std::vector<std::string> genes, std::vector<Covariate> covariates,
                         Resources resources)
    : spec_(complete_spec(spec)),
      genes_(std::move(genes)),
      covariates_(std::move(covariates)),
      resources_(std::move(resources)),
      device_(parse_device(spec_.text("device"))) {
  if (genes_.empty()) throw std::invalid_argument("a model needs at least one gene");
  check_resources(resources_);
  check_covariates(covariates_);
  at::manual_seed(static_cast<uint64_t>(spec_.integer("seed")));
}

Options ModelRecord::loaded_spec(const Json& meta) {
  Options spec = Options::from_json(meta.at("spec").dump());
  spec.set("device", "cpu");
  // Settings added after files were already being saved, with the value that
  // reproduces what those older files hold. New models get the composition's
  // default; a file without the setting was written before it existed.
  struct LegacyValue {
    const char* setting;
    double value_in_older_files;
  };
  static constexpr LegacyValue kLegacy[] = {
      {"per_gene_weights", 0.0},  // genes were read with one shared map
      {"cell_node", 0.0},         // grn_attention had no cell node
      {"cell_node_summary", 0.0},  // its cell node started as the genes' mean token
      {"summary_token", 0.0},     // rank_tokens' and set_tokens' tokens had no summary token
  };
  const Options defaults = composition_defaults(spec.text("architecture"), spec.text("objective", ""));
  for (const LegacyValue& legacy : kLegacy) {
    if (defaults.has(legacy.setting) && !spec.has(legacy.setting)) spec.set(legacy.setting, legacy.value_in_older_files);
  }
  return spec;
}

void ModelRecord::restore_record(const Json& meta) {
  if (meta.contains("annotations")) annotations_ = Options::from_json(meta.at("annotations").dump());
  history_ = history_from_json(meta.at("history"));
}

CovariateColumns ModelRecord::columns_of(const CellCovariates& cells, size_t n_cells, bool skip_unknown_members) const {
  return covariate_columns(cells, n_cells, covariates_, skip_unknown_members);
}

CellSplit ModelRecord::split_and_annotate(const CovariateColumns& columns, size_t n_cells, double fraction,
                                          uint64_t seed) {
  const CellSplit split =
      split_cells(static_cast<int>(n_cells), combination_strata(columns, covariates_, n_cells), fraction, seed);
  const auto record = [&](const std::vector<int>& cells, const std::string& key) {
    annotations_.set(key, static_cast<double>(cells.size()));
    for (const Covariate& covariate : covariates_) {
      std::vector<double> per_level(covariate.levels.size(), 0.0);
      const std::vector<int>& codes = columns.at(covariate.name);
      for (int c : cells) {
        // (Codes past the levels are extra perturbation combinations: not annotated.)
        if (codes[c] >= 0 && static_cast<size_t>(codes[c]) < per_level.size()) per_level[codes[c]] += 1.0;
      }
      const std::string prefix = covariates_.size() == 1 ? key + ":" : key + ":" + covariate.name + "=";
      for (size_t l = 0; l < per_level.size(); ++l) annotations_.set(prefix + covariate.levels[l], per_level[l]);
    }
  };
  record(split.train, "training_cells");
  record(split.validation, "validation_cells");
  return split;
}

}  // namespace exprflow
