#include "api/model_record.hpp"

#include <stdexcept>

#include "io/model_archive.hpp"
#include "models/compositions.hpp"
#include "runtime/device.hpp"

namespace exprflow {

ModelRecord::ModelRecord(Options spec, std::vector<std::string> genes, std::vector<std::string> levels,
                         Resources resources)
    : spec_(complete_spec(spec)),
      genes_(std::move(genes)),
      levels_(std::move(levels)),
      resources_(std::move(resources)),
      device_(parse_device(spec_.text("device"))) {
  if (genes_.empty()) throw std::invalid_argument("a model needs at least one gene");
  check_resources(resources_);
  at::manual_seed(static_cast<uint64_t>(spec_.integer("seed")));
}

Options ModelRecord::loaded_spec(const Json& meta) {
  Options spec = Options::from_json(meta.at("spec").dump());
  spec.set("device", "cpu");
  return spec;
}

void ModelRecord::restore_record(const Json& meta) {
  if (meta.contains("annotations")) annotations_ = Options::from_json(meta.at("annotations").dump());
  history_ = history_from_json(meta.at("history"));
}

void ModelRecord::annotate_split(const CellSplit& split, const std::vector<int>& strata) {
  const auto record = [&](const std::vector<int>& cells, const std::string& key) {
    annotations_.set(key, static_cast<double>(cells.size()));
    std::vector<double> per_level(levels_.size(), 0.0);
    for (int c : cells) {
      if (strata[c] >= 0 && strata[c] < static_cast<int>(per_level.size())) per_level[strata[c]] += 1.0;
    }
    for (size_t l = 0; l < levels_.size(); ++l) annotations_.set(key + ":" + levels_[l], per_level[l]);
  };
  record(split.train, "training_cells");
  record(split.validation, "validation_cells");
}

}  // namespace exprflow
