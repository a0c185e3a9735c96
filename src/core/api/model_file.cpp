#include "api/model_file.hpp"

#include <set>

#include "api/model_inputs.hpp"
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
  Json covariates = Json::array();
  for (const Covariate& c : model.covariates()) {
    Json entry = {{"name", c.name}, {"levels", c.levels}};
    if (c.perturbation_set) {
      entry["perturbation_set"] = true;
      entry["control"] = c.control;
      entry["dosed"] = c.dosed;
      entry["dose_scale"] = c.dose_scale;
    }
    covariates.push_back(entry);
  }
  meta["covariates"] = covariates;
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

std::vector<Covariate> read_covariates(const Json& meta) {
  std::vector<Covariate> covariates;
  if (meta.contains("covariates")) {
    for (const Json& c : meta.at("covariates")) {
      Covariate covariate{c.at("name").get<std::string>(), c.at("levels").get<std::vector<std::string>>()};
      if (c.value("perturbation_set", false)) {
        covariate.perturbation_set = true;
        covariate.control = c.at("control").get<std::string>();
        covariate.dosed = c.at("dosed").get<bool>();
        covariate.dose_scale = c.at("dose_scale").get<double>();
      }
      covariates.push_back(std::move(covariate));
    }
    return covariates;
  }
  // Files written before several covariates: one condition, possibly none.
  auto levels = meta.at("condition_levels").get<std::vector<std::string>>();
  if (!levels.empty()) covariates.push_back({kConditionCovariate, std::move(levels)});
  return covariates;
}

void write_library_sizes(TensorBundle& bundle, const LibrarySizePools& pools) {
  bundle.put("library_size_values", at::tensor(pools.sizes(), at::TensorOptions().dtype(at::kDouble)));
  bundle.put("library_size_codes", at::tensor(pools.codes(), at::TensorOptions().dtype(at::kInt)));
  // Gene-space models: each training cell's detected genes ("matched" sizes).
  if (pools.has_detected()) {
    bundle.put("library_size_detected", at::tensor(pools.detected(), at::TensorOptions().dtype(at::kInt)));
  }
}

namespace {

std::vector<double> doubles_of(const Tensor& t) {
  const Tensor d = t.to(at::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

std::vector<int64_t> longs_of(const Tensor& t) {
  const Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

void write_centroids(TensorBundle& bundle, const CovariateCentroids& centroids, const std::string& prefix) {
  if (centroids.empty()) return;
  const CovariateCentroids::Table t = centroids.table();
  const int64_t k = static_cast<int64_t>(t.counts.size());
  const auto longs = at::TensorOptions().dtype(at::kLong);
  bundle.put(prefix + "_codes", at::tensor(std::vector<int64_t>(t.codes.begin(), t.codes.end()), longs).view({k, -1}));
  bundle.put(prefix + "_means", at::tensor(t.means, at::TensorOptions().dtype(at::kFloat)).view({k, -1}));
  bundle.put(prefix + "_counts", at::tensor(std::vector<int64_t>(t.counts.begin(), t.counts.end()), longs));
}

void read_centroids(const TensorBundle& bundle, CovariateCentroids& centroids, const std::string& prefix) {
  centroids.clear();
  if (!bundle.has(prefix + "_counts")) return;
  CovariateCentroids::Table t;
  for (int64_t v : longs_of(bundle.get(prefix + "_codes"))) t.codes.push_back(static_cast<int>(v));
  for (int64_t v : longs_of(bundle.get(prefix + "_counts"))) t.counts.push_back(static_cast<long>(v));
  const Tensor means = bundle.get(prefix + "_means").to(at::kFloat).contiguous();
  t.means.assign(means.data_ptr<float>(), means.data_ptr<float>() + means.numel());
  centroids.restore(t);
}

void write_gene_calibration(TensorBundle& bundle, const GeneShareCalibration& calibration) {
  const std::vector<GeneShareCalibration::Row> rows = calibration.rows();
  if (rows.empty()) return;
  const int64_t P = static_cast<int64_t>(rows.size()), G = calibration.n_genes();
  const int64_t C = static_cast<int64_t>(rows[0].codes.size());
  std::vector<int64_t> codes, cells;
  std::vector<double> targets, factors;
  bool all_factors = true;
  for (const auto& r : rows) {
    codes.insert(codes.end(), r.codes.begin(), r.codes.end());
    cells.push_back(r.target_cells);
    targets.insert(targets.end(), r.target_sum.begin(), r.target_sum.end());
    all_factors = all_factors && !r.factors.empty();
    factors.insert(factors.end(), r.factors.begin(), r.factors.end());
  }
  const auto longs = at::TensorOptions().dtype(at::kLong), doubles = at::TensorOptions().dtype(at::kDouble);
  bundle.put("gene_share_codes", at::tensor(codes, longs).view({P, C}));
  bundle.put("gene_share_target_cells", at::tensor(cells, longs));
  bundle.put("gene_share_target_sum", at::tensor(targets, doubles).view({P, G}));
  // finish() gives every combination factors, so they come all or none.
  if (all_factors) bundle.put("gene_share_factors", at::tensor(factors, doubles).view({P, G}));
}

void read_gene_calibration(const TensorBundle& bundle, GeneShareCalibration& calibration, int n_covariates) {
  calibration.clear();
  if (!bundle.has("gene_share_target_cells")) return;
  const std::vector<int64_t> cells = longs_of(bundle.get("gene_share_target_cells"));
  const int64_t P = static_cast<int64_t>(cells.size()), G = calibration.n_genes();
  const std::vector<int64_t> codes = longs_of(bundle.get("gene_share_codes", {P, n_covariates}, at::kLong));
  const std::vector<double> targets = doubles_of(bundle.get("gene_share_target_sum", {P, G}, at::kDouble));
  std::vector<double> factors;
  if (bundle.has("gene_share_factors")) factors = doubles_of(bundle.get("gene_share_factors", {P, G}, at::kDouble));
  std::vector<GeneShareCalibration::Row> rows(P);
  for (int64_t p = 0; p < P; ++p) {
    rows[p].codes.assign(codes.begin() + p * n_covariates, codes.begin() + (p + 1) * n_covariates);
    rows[p].target_cells = static_cast<long>(cells[p]);
    rows[p].target_sum.assign(targets.begin() + p * G, targets.begin() + (p + 1) * G);
    if (!factors.empty()) rows[p].factors.assign(factors.begin() + p * G, factors.begin() + (p + 1) * G);
  }
  calibration.restore(rows);
}

void read_library_sizes(const TensorBundle& bundle, LibrarySizePools& pools) {
  pools.clear();
  const int k = pools.n_covariates();
  if (bundle.has("library_size_values")) {
    const std::vector<double> sizes = doubles_of(bundle.get("library_size_values"));
    const Tensor codes = bundle.get("library_size_codes").to(at::kInt).contiguous();
    if (codes.numel() != static_cast<int64_t>(sizes.size()) * k) {
      throw std::invalid_argument("'library_size_codes' does not hold " + std::to_string(k) + " codes per cell");
    }
    const int* code = codes.data_ptr<int>();
    // Files from before "matched" library sizes have no detected genes.
    std::vector<int64_t> detected(sizes.size(), -1);
    if (bundle.has("library_size_detected")) {
      detected = longs_of(bundle.get("library_size_detected"));
      if (detected.size() != sizes.size()) {
        throw std::invalid_argument("'library_size_detected' does not hold one count per cell");
      }
    }
    for (size_t cell = 0; cell < sizes.size(); ++cell) {
      pools.add(std::vector<int>(code + cell * k, code + (cell + 1) * k), sizes[cell], static_cast<int>(detected[cell]));
    }
    return;
  }
  // Files written before several covariates: one pool per level of the one
  // condition, then a pool of all cells (which also holds the cells without
  // a level: what it has beyond the level pools).
  if (k > 1) throw std::invalid_argument("the file's library sizes are for one condition, the model has several");
  int n_levels = 0;
  while (bundle.has("library_sizes_" + std::to_string(n_levels + 1))) ++n_levels;
  std::multiset<double> without_level;
  for (double s : doubles_of(bundle.get("library_sizes_" + std::to_string(n_levels)))) without_level.insert(s);
  for (int l = 0; l < n_levels; ++l) {
    for (double s : doubles_of(bundle.get("library_sizes_" + std::to_string(l)))) {
      pools.add(k == 0 ? std::vector<int>{} : std::vector<int>{l}, s);
      auto it = without_level.find(s);
      if (it != without_level.end()) without_level.erase(it);
    }
  }
  for (double s : without_level) pools.add(std::vector<int>(k, -1), s);
}

}  // namespace exprflow
