#include "api/model_file.hpp"

#include "io/model_archive.hpp"

namespace exprflow {

namespace {

constexpr const char* kFormat = "exprflow-model";
// 2: composed networks on continuous time (flow / DDPM) and latent models.
// Files of version 1 (the hard-wired DDPM latent-token model) cannot be read
// into them.
constexpr int kFormatVersion = 2;

}  // namespace

Json generative_model_meta(const GenerativeModel& model) {
  Json meta = archive_meta(kFormat, kFormatVersion, model.spec());
  meta["genes"] = model.genes();
  meta["condition_levels"] = model.condition_levels();
  meta["trained"] = model.trained();
  meta["annotations"] = Json::parse(const_cast<GenerativeModel&>(model).annotations().to_json());
  meta["history"] = history_to_json(model.history());
  Json resources = Json::object();
  for (const auto& [name, r] : model.resources()) {
    resources[name] = {{"shape", r.shape}, {"row_names", r.row_names}, {"column_names", r.column_names}};
  }
  meta["resources"] = resources;
  return meta;
}

TensorBundle open_generative_model_bytes(std::string_view bytes, const std::string& path, bool trust_legacy) {
  TensorBundle bundle = open_model_bytes(bytes, path, kFormat, kFormatVersion, "model", trust_legacy);
  const Json& meta = bundle.meta;
  if (meta.at("version").get<double>() < kFormatVersion) {
    throw std::runtime_error("'" + path + "' was saved by an earlier exprflow (model format version " +
                             format_number(meta.at("version").get<double>()) +
                             ") whose models this version cannot read; fit the model again");
  }
  return bundle;
}

void write_resources(TensorBundle& bundle, const Resources& resources) {
  for (const auto& [name, r] : resources) {
    bundle.put("resource/" + name, at::tensor(r.values, at::TensorOptions().dtype(at::kFloat)));
  }
}

Resources read_resources(const TensorBundle& bundle) {
  Resources resources;
  const Json& entries = bundle.meta.at("resources");
  if (!entries.is_object()) throw std::invalid_argument("'resources' is not a JSON object");
  for (const auto& [name, entry] : entries.items()) {
    NamedTensor& r = resources[name];
    r.shape = entry.at("shape").get<std::vector<int64_t>>();
    r.row_names = entry.at("row_names").get<std::vector<std::string>>();
    r.column_names = entry.at("column_names").get<std::vector<std::string>>();
    const Tensor values = bundle.get("resource/" + name).to(at::kFloat).contiguous();
    r.values.assign(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
  }
  return resources;
}

void write_library_sizes(TensorBundle& bundle, const LibrarySizePools& pools) {
  for (int l = 0; l < pools.n_pools(); ++l) {
    bundle.put("library_sizes_" + std::to_string(l), at::tensor(pools.pool(l), at::TensorOptions().dtype(at::kDouble)));
  }
}

void read_library_sizes(const TensorBundle& bundle, LibrarySizePools& pools) {
  for (int l = 0; l < pools.n_pools(); ++l) {
    const Tensor sizes = bundle.get("library_sizes_" + std::to_string(l)).to(at::kDouble).contiguous();
    pools.pool(l).assign(sizes.data_ptr<double>(), sizes.data_ptr<double>() + sizes.numel());
  }
}

}  // namespace exprflow
