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

Json open_generative_model_bytes(torch::serialize::InputArchive& archive, std::string_view bytes,
                                 const std::string& path) {
  const Json meta = open_model_bytes(archive, bytes, path, kFormat, kFormatVersion, "model");
  if (meta.at("version").get<double>() < kFormatVersion) {
    throw std::runtime_error("'" + path + "' was saved by an earlier exprflow (model format version " +
                             format_number(meta.at("version").get<double>()) +
                             ") whose models this version cannot read; fit the model again");
  }
  return meta;
}

void write_resources(torch::serialize::OutputArchive& archive, const Resources& resources) {
  for (const auto& [name, r] : resources) {
    archive.write("resource/" + name, at::tensor(r.values, at::TensorOptions().dtype(at::kFloat)));
  }
}

Resources read_resources(torch::serialize::InputArchive& archive, const Json& meta) {
  Resources resources;
  for (const auto& [name, entry] : meta.at("resources").items()) {
    NamedTensor& r = resources[name];
    r.shape = entry.at("shape").get<std::vector<int64_t>>();
    r.row_names = entry.at("row_names").get<std::vector<std::string>>();
    r.column_names = entry.at("column_names").get<std::vector<std::string>>();
    Tensor values;
    archive.read("resource/" + name, values);
    values = values.to(at::kFloat).contiguous();
    r.values.assign(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
  }
  return resources;
}

void write_library_sizes(torch::serialize::OutputArchive& archive, const LibrarySizePools& pools) {
  for (int l = 0; l < pools.n_pools(); ++l) {
    archive.write("library_sizes_" + std::to_string(l), at::tensor(pools.pool(l), at::TensorOptions().dtype(at::kDouble)));
  }
}

void read_library_sizes(torch::serialize::InputArchive& archive, LibrarySizePools& pools) {
  for (int l = 0; l < pools.n_pools(); ++l) {
    Tensor sizes;
    archive.read("library_sizes_" + std::to_string(l), sizes);
    sizes = sizes.to(at::kDouble).contiguous();
    pools.pool(l).assign(sizes.data_ptr<double>(), sizes.data_ptr<double>() + sizes.numel());
  }
}

void write_module(torch::serialize::OutputArchive& archive, const std::string& key, const torch::nn::Module& module) {
  torch::serialize::OutputArchive part;
  module.save(part);
  archive.write(key, part);
}

void read_module(torch::serialize::InputArchive& archive, const std::string& key, torch::nn::Module& module) {
  torch::serialize::InputArchive part;
  archive.read(key, part);
  module.load(part);
}

}  // namespace exprflow
