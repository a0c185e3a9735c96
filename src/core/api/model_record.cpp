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

}  // namespace exprflow
