#include "api/diffusion_model.hpp"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <random>
#include <stdexcept>

#include "condition/categorical_condition.hpp"
#include "data/split.hpp"
#include "decode/count_decoding.hpp"
#include "decode/negative_binomial.hpp"
#include "io/json.hpp"
#include "io/model_archive.hpp"
#include "runtime/device.hpp"
#include "models/registry.hpp"
#include "sample/samplers.hpp"
#include "train/trainer.hpp"

namespace exprflow {

namespace {

constexpr const char* kFormat = "exprflow-model";
constexpr int kFormatVersion = 1;

Options full_spec(const Options& spec) {
  Options base = architecture_defaults(spec.text("architecture", "latent_tokens"));
  base.set("seed", 1.0).set("device", "cpu");
  return base.merged(spec, /*known_only=*/true);
}

Denoiser as_denoiser(DenoisingNetworkImpl& network) {
  return [&network](const Tensor& x_t, const Tensor& t, const Tensor& c) {
    return network.forward(x_t, t, c);
  };
}

// Cells lo, lo + 1, ..., hi - 1.
std::vector<int> cell_range(int lo, int hi) {
  std::vector<int> cells;
  for (int c = lo; c < hi; ++c) cells.push_back(c);
  return cells;
}

Tensor float_tensor(const std::vector<float>& v, const at::Device& device) {
  return at::tensor(v, at::TensorOptions().dtype(at::kFloat)).to(device);
}

}  // namespace

// ------------------------------------------------------------ construction ---
DiffusionModel::DiffusionModel(Options spec, std::vector<std::string> genes,
                               std::vector<std::string> levels)
    : spec_(full_spec(spec)),
      genes_(std::move(genes)),
      levels_(std::move(levels)),
      device_(parse_device(spec_.text("device"))),
      objective_(NoiseSchedule(spec_.text("schedule"), spec_.integer("timesteps")), spec_.text("prediction"),
                 spec_.flag("learn_sigma", true), spec_.number("vlb_weight")) {
  if (genes_.empty()) throw std::invalid_argument("a model needs at least one gene");
  if (spec_.text("objective") != "ddpm") {
    throw std::invalid_argument("objective '" + spec_.text("objective") +
                                "' is not available for this architecture; valid: 'ddpm'");
  }
  const double cfg_dropout = spec_.number("cfg_dropout");
  if (cfg_dropout < 0 || cfg_dropout >= 1) {
    throw std::invalid_argument("setting 'cfg_dropout' must be in [0, 1)");
  }
  // Initialisation draws from LibTorch's global generator: seed it so that a
  // seed fixes the initial weights too.
  at::manual_seed(static_cast<uint64_t>(spec_.integer("seed")));
  const int64_t G = static_cast<int64_t>(genes_.size()), L = static_cast<int64_t>(levels_.size());
  network_ = build_network(spec_, G, L);
  ema_ = build_network(spec_, G, L);
  network_->to(device_);
  ema_->to(device_);
  ema_->eval();
  for (Tensor& p : ema_->parameters()) p.set_requires_grad(false);
  // Until trained: identity scaling, no clipping box.
  GeneScaling identity;
  identity.mean.assign(G, 0.0f);
  identity.sd.assign(G, 1.0f);
  identity.min.assign(G, -INFINITY);
  identity.max.assign(G, INFINITY);
  set_scaling(identity);
  theta_.assign(G, kPoissonTheta);
  library_sizes_.assign(L + 1, std::vector<double>{});
}

std::unique_ptr<GenerativeModel> GenerativeModel::create(const Options& spec,
                                                         std::vector<std::string> genes,
                                                         std::vector<std::string> levels) {
  return std::make_unique<DiffusionModel>(spec, std::move(genes), std::move(levels));
}

std::vector<std::string> GenerativeModel::architectures() { return registered_architectures(); }
Options GenerativeModel::default_spec(const std::string& architecture) {
  return full_spec(Options().set("architecture", architecture));
}

Options GenerativeModel::default_train_options() {
  Options o;
  o.set("epochs", 100.0).set("batch_size", 128.0).set("learning_rate", 1e-4)
      .set("weight_decay", 0.01).set("warmup_fraction", 0.05).set("min_lr_ratio", 0.1)
      .set("grad_clip", 1.0).set("ema_decay", 0.999).set("patience", 10.0)
      .set("validation_fraction", 0.1).set("seed", 1.0);
  return o;
}

Options GenerativeModel::default_sample_options() {
  Options o;
  o.set("method", "ddim").set("steps", 50.0).set("eta", 0.0).set("guidance_scale", 1.0)
      .set("batch_size", 256.0).set("seed", 1.0).set("clip", 1.0);
  return o;
}

long DiffusionModel::parameter_count() const {
  long n = 0;
  for (const Tensor& p : network_->parameters()) n += p.numel();
  return n;
}

void DiffusionModel::set_scaling(const GeneScaling& s) {
  mean_ = float_tensor(s.mean, device_);
  sd_ = float_tensor(s.sd, device_);
  // Clipping box in standardised units: the range of the training data.
  low_ = (float_tensor(s.min, device_) - mean_) / sd_;
  high_ = (float_tensor(s.max, device_) - mean_) / sd_;
  if (std::isfinite(s.min.empty() ? 0.0f : s.min[0])) objective_.set_x0_bounds(low_, high_);
}

// ----------------------------------------------------------------- helpers ---
void DiffusionModel::check_genes(const ExpressionSource& data) const {
  if (data.genes() == genes_) return;
  if (data.n_genes() != static_cast<int>(genes_.size())) {
    throw std::invalid_argument("the data has " + std::to_string(data.n_genes()) +
                                " genes but the model was built for " +
                                std::to_string(genes_.size()));
  }
  for (size_t g = 0; g < genes_.size(); ++g) {
    if (data.genes()[g] != genes_[g]) {
      throw std::invalid_argument("gene " + std::to_string(g + 1) + " of the data is '" +
                                  data.genes()[g] + "' but the model expects '" + genes_[g] + "'");
    }
  }
}

Tensor DiffusionModel::scaled_batch(const ExpressionSource& data, const std::vector<int>& cells) const {
  const int64_t B = static_cast<int64_t>(cells.size()), G = data.n_genes();
  Tensor x = at::empty({B, G}, at::TensorOptions().dtype(at::kFloat));  // (B, G) on CPU
  data.fill_log_normalised(cells, x.data_ptr<float>());
  return (x.to(device_) - mean_) / sd_;  // (B, G)
}

Tensor DiffusionModel::condition_tensor(const std::vector<int>& levels) const {
  const int64_t null_index = static_cast<int64_t>(levels_.size());
  std::vector<int64_t> v(levels.size());
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i] < -1 || levels[i] >= static_cast<int>(levels_.size())) {
      throw std::invalid_argument("condition index " + std::to_string(levels[i]) +
                                  " outside the model's " + std::to_string(levels_.size()) + " levels");
    }
    v[i] = levels[i] < 0 ? null_index : levels[i];
  }
  return at::tensor(v, at::TensorOptions().dtype(at::kLong)).to(device_);  // (B,)
}

// ------------------------------------------------------------------- train ---
TrainReport DiffusionModel::train(const ExpressionSource& data, const std::vector<int>& conditions,
                                  const Options& train_options, const TrainCallbacks& callbacks) {
  check_genes(data);
  const Options options = default_train_options().merged(train_options, /*known_only=*/true);
  const TrainerSettings settings = TrainerSettings::from(options);
  const int n = data.n_cells();
  std::vector<int> levels = conditions;
  if (levels_.empty()) levels.assign(n, -1);
  if (static_cast<int>(levels.size()) != n) {
    throw std::invalid_argument("one condition per cell is needed (" + std::to_string(n) +
                                " cells, " + std::to_string(levels.size()) + " conditions)");
  }
  for (int level : levels) {
    if (level < -1 || level >= static_cast<int>(levels_.size())) {
      throw std::invalid_argument("condition index " + std::to_string(level) + " is not a level of the model");
    }
  }

  const CellSplit split = split_cells(n, levels, options.number("validation_fraction"), settings.seed);
  if (!trained_) {
    // The data's scale, dispersions and library sizes are fixed by the first
    // training run; fine-tuning keeps them so the network's inputs keep meaning.
    set_scaling(GeneScaling::fit(data, split.train));
    theta_ = estimate_nb_theta(data, split.train);
    for (auto& sizes : library_sizes_) sizes.clear();
    for (int c : split.train) {
      if (levels[c] >= 0) library_sizes_[levels[c]].push_back(data.library_sizes()[c]);
      library_sizes_.back().push_back(data.library_sizes()[c]);
    }
  }

  const double cfg_dropout = levels_.empty() ? 0.0 : spec_.number("cfg_dropout");
  const int64_t null_index = network_->null_condition();
  Denoiser network = as_denoiser(*network_);
  TrainingTask task;
  task.module = network_.get();
  task.ema = ema_.get();
  task.batch_loss = [&](const std::vector<int>& cells, at::Generator& generator) {
    std::vector<int> batch_levels(cells.size());
    for (size_t i = 0; i < cells.size(); ++i) batch_levels[i] = levels[cells[i]];
    Tensor condition = drop_conditions(condition_tensor(batch_levels).cpu(), cfg_dropout, null_index,
                                       generator).to(device_);  // (B,)
    return objective_.loss(network, scaled_batch(data, cells), condition, generator).total;
  };
  task.validation_loss = [&](const std::vector<int>& cells) {
    torch::NoGradGuard no_grad;
    // The same timesteps and noise every epoch, so epochs are comparable.
    at::Generator generator = at::detail::createCPUGenerator(settings.seed + 7919);
    double total = 0;
    for (size_t lo = 0; lo < cells.size(); lo += settings.batch_size) {
      std::vector<int> part(cells.begin() + lo,
                            cells.begin() + std::min(cells.size(), lo + settings.batch_size));
      std::vector<int> part_levels(part.size());
      for (size_t i = 0; i < part.size(); ++i) part_levels[i] = levels[part[i]];
      Tensor x0 = scaled_batch(data, part);
      total += objective_.loss(network, x0, condition_tensor(part_levels), generator).total.item<double>() *
               part.size();
    }
    return total / cells.size();
  };

  TrainReport report = run_training(task, split.train, split.validation, settings, callbacks);
  append_history(history_, report);
  trained_ = trained_ || report.steps > 0;
  return report;
}

// ---------------------------------------------------------------- generate ---
SamplerSettings DiffusionModel::sampler_settings(const Options& o) const {
  SamplerSettings settings;
  settings.method = o.text("method");
  settings.steps = o.integer("steps");
  settings.eta = o.number("eta");
  settings.prediction = objective_.prediction();
  settings.learned_variance = objective_.learn_sigma();
  if (o.flag("clip", true)) {
    settings.clip_low = low_;
    settings.clip_high = high_;
  }
  if (settings.steps < 1 || settings.steps > objective_.schedule().timesteps()) {
    throw std::invalid_argument("steps must be between 1 and the training timesteps (" +
                                std::to_string(objective_.schedule().timesteps()) + ")");
  }
  if (o.integer("batch_size") < 1) throw std::invalid_argument("batch_size must be at least 1");
  return settings;
}

GeneratedCells DiffusionModel::generate(const std::vector<int>& conditions, const Options& sample_options) {
  if (!trained_) throw std::invalid_argument("the model has not been trained yet");
  const Options o = default_sample_options().merged(sample_options, /*known_only=*/true);
  const SamplerSettings settings = sampler_settings(o);
  const long batch_size = o.integer("batch_size");
  const uint64_t seed = static_cast<uint64_t>(o.integer("seed"));
  const double guidance = levels_.empty() ? 1.0 : o.number("guidance_scale");
  Denoiser network = with_guidance(as_denoiser(*ema_), ema_->null_condition(), guidance);

  const int G = static_cast<int>(genes_.size()), n = static_cast<int>(conditions.size());
  GeneratedCells out;
  out.n_genes = G;
  out.n_cells = n;
  out.logcounts.resize(static_cast<size_t>(G) * n);
  out.counts.resize(static_cast<size_t>(G) * n);
  out.library_size.resize(n);

  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  std::mt19937_64 rng(seed ^ 0xD1B54A32D192ED03ULL);
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min<int>(n, lo + batch_size);
    std::vector<int> part(conditions.begin() + lo, conditions.begin() + hi);
    Tensor x0 = sample(network, objective_.schedule(), condition_tensor(part), G, settings, generator);
    Tensor y = at::clamp_min(x0 * sd_ + mean_, 0.0).to(at::kCPU).contiguous();  // (B, G)
    std::memcpy(out.logcounts.data() + static_cast<size_t>(lo) * G, y.data_ptr<float>(),
                sizeof(float) * y.numel());
  }
  // Counts: library size from training cells of the same condition, then the
  // inverse of the normalisation (see decode/count_decoding.hpp).
  for (int i = 0; i < n; ++i) {
    const std::vector<double>& pool = conditions[i] >= 0 && !library_sizes_[conditions[i]].empty()
                                          ? library_sizes_[conditions[i]]
                                          : library_sizes_.back();
    std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
    out.library_size[i] = pool[pick(rng)];
    round_counts(out.logcounts.data() + static_cast<size_t>(i) * G, G, out.library_size[i], rng,
                 out.counts.data() + static_cast<size_t>(i) * G);
  }
  return out;
}

// ------------------------------------------------------------- reconstruct ---
ReconstructedCells DiffusionModel::reconstruct(const ExpressionSource& data, const std::vector<int>& conditions,
                                               const Options& options) {
  if (!trained_) throw std::invalid_argument("the model has not been trained yet");
  check_genes(data);
  Options defaults = default_sample_options();
  defaults.set("noise_level", 0.5);
  const Options o = defaults.merged(options, /*known_only=*/true);
  const SamplerSettings settings = sampler_settings(o);
  const double noise_level = o.number("noise_level");
  const int n = data.n_cells(), G = static_cast<int>(genes_.size());
  std::vector<int> levels = conditions;
  if (levels_.empty() || levels.empty()) levels.assign(n, -1);
  if (static_cast<int>(levels.size()) != n) {
    throw std::invalid_argument("one condition per cell is needed (" + std::to_string(n) + " cells, " +
                                std::to_string(levels.size()) + " conditions)");
  }
  const double guidance = levels_.empty() ? 1.0 : o.number("guidance_scale");
  Denoiser network = with_guidance(as_denoiser(*ema_), ema_->null_condition(), guidance);
  const long batch_size = o.integer("batch_size");

  ReconstructedCells out;
  out.n_genes = G;
  out.n_cells = n;
  out.logcounts.resize(static_cast<size_t>(G) * n);
  out.expected_counts.resize(static_cast<size_t>(G) * n);
  out.log_likelihood.resize(n);
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(o.integer("seed")));
  std::vector<float> observed(static_cast<size_t>(batch_size) * G);
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min<int>(n, lo + batch_size);
    const std::vector<int> cells = cell_range(lo, hi), part(levels.begin() + lo, levels.begin() + hi);
    Tensor x0 = renoise_and_denoise(network, objective_.schedule(), scaled_batch(data, cells),
                                    condition_tensor(part), noise_level, settings, generator);  // (B, G)
    Tensor y = at::clamp_min(x0 * sd_ + mean_, 0.0).to(at::kCPU).contiguous();                 // (B, G)
    float* logcounts = out.logcounts.data() + static_cast<size_t>(lo) * G;
    std::memcpy(logcounts, y.data_ptr<float>(), sizeof(float) * y.numel());
    data.fill_counts(cells, observed.data());
    for (size_t b = 0; b < cells.size(); ++b) {
      double* mu = out.expected_counts.data() + static_cast<size_t>(cells[b]) * G;
      expected_counts(logcounts + b * G, G, data.library_sizes()[cells[b]], mu);
      out.log_likelihood[cells[b]] = nb_log_likelihood(observed.data() + b * G, mu, G, theta_);
    }
  }
  return out;
}

// -------------------------------------------------------------- interpret ---
std::vector<float> DiffusionModel::token_activations(const ExpressionSource& data, int* n_tokens) {
  return per_cell_rows(data, n_tokens, [this](const Tensor& x) {
    return ema_->tokens(x).norm(2, {2});  // (B, m)
  });
}
std::vector<float> DiffusionModel::token_gene_loadings(const std::string& method, const ExpressionSource* data,
                                                       int* n_tokens) {
  Tensor loadings;  // (m, G)
  if (method == "weights") {
    loadings = ema_->token_weight_loadings();
  } else if (method == "gradient") {
    if (data == nullptr || data->n_cells() == 0) {
      throw std::invalid_argument("gradient loadings need cells to average over");
    }
    check_genes(*data);
    const int n = data->n_cells(), batch = 256;
    Tensor total;  // (m, G)
    for (int lo = 0; lo < n; lo += batch) {
      Tensor x = scaled_batch(*data, cell_range(lo, std::min(n, lo + batch))).detach().requires_grad_(true);  // (B, G)
      Tensor norms = ema_->tokens(x).norm(2, {2});                          // (B, m)
      std::vector<Tensor> rows;
      for (int64_t k = 0; k < norms.size(1); ++k) {
        // Cells are independent, so the gradient of the sum is each cell's own.
        Tensor grad = torch::autograd::grad({norms.select(1, k).sum()}, {x},
                                            /*grad_outputs=*/{}, /*retain_graph=*/true)[0];  // (B, G)
        rows.push_back(grad.sum(0));                                                          // (G,)
      }
      Tensor part = at::stack(rows);  // (m, G)
      total = total.defined() ? total + part : part;
    }
    loadings = total / static_cast<double>(n);
  } else {
    throw std::invalid_argument("unknown loading method '" + method + "'; valid: 'weights', 'gradient'");
  }
  loadings = loadings.detach().to(at::kFloat).to(at::kCPU).contiguous();
  *n_tokens = static_cast<int>(loadings.size(0));
  return std::vector<float>(loadings.data_ptr<float>(), loadings.data_ptr<float>() + loadings.numel());
}

// ------------------------------------------------------------------- embed ---
std::vector<float> DiffusionModel::embed(const ExpressionSource& data, int* dims) {
  return per_cell_rows(data, dims, [this](const Tensor& x) { return ema_->embed(x); });  // (B, D)
}

std::vector<float> DiffusionModel::per_cell_rows(const ExpressionSource& data, int* width,
                                                 const std::function<Tensor(const Tensor&)>& f) const {
  check_genes(data);
  torch::NoGradGuard no_grad;
  std::vector<float> result;
  const int n = data.n_cells(), batch = 256;
  for (int lo = 0; lo < n; lo += batch) {
    Tensor rows = f(scaled_batch(data, cell_range(lo, std::min(n, lo + batch)))).to(at::kCPU).contiguous();  // (B, W)
    *width = static_cast<int>(rows.size(1));
    result.insert(result.end(), rows.data_ptr<float>(), rows.data_ptr<float>() + rows.numel());
  }
  return result;
}
// --------------------------------------------------------------- save/load ---
void DiffusionModel::save(const std::string& path) const {
  json::Value meta = json::Value::object();
  meta.set("format", kFormat).set("version", kFormatVersion);
  meta.set("spec", json::parse(spec_.to_json()));
  meta.set("genes", json::Value::strings(genes_));
  meta.set("condition_levels", json::Value::strings(levels_));
  meta.set("trained", trained_);
  meta.set("annotations", json::parse(annotations_.to_json()));
  meta.set("history", history_to_json(history_));

  torch::serialize::OutputArchive archive;
  archive.write("meta", c10::IValue(json::dump(meta)));
  torch::serialize::OutputArchive network, ema;
  network_->save(network);
  ema_->save(ema);
  archive.write("network", network);
  archive.write("ema", ema);
  archive.write("gene_mean", mean_.cpu());
  archive.write("gene_sd", sd_.cpu());
  archive.write("clip_low", low_.cpu());
  archive.write("clip_high", high_.cpu());
  archive.write("theta", at::tensor(theta_, at::TensorOptions().dtype(at::kDouble)));
  for (size_t l = 0; l < library_sizes_.size(); ++l) {
    archive.write("library_sizes_" + std::to_string(l),
                  at::tensor(library_sizes_[l], at::TensorOptions().dtype(at::kDouble)));
  }
  write_model_archive(archive, path, "model");
}

std::unique_ptr<DiffusionModel> DiffusionModel::load_file(const std::string& path) {
  torch::serialize::InputArchive archive;
  const json::Value meta = open_model_archive(archive, path, kFormat, kFormatVersion, "model");
  try {
    return read_model(archive, meta);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read model file '" + path + "': the file is incomplete or corrupt (" +
                             e.what() + ")");
  }
}

std::unique_ptr<DiffusionModel> DiffusionModel::read_model(torch::serialize::InputArchive& archive,
                                                           const json::Value& meta) {
  Options spec = Options::from_json(json::dump(meta.at("spec")));
  spec.set("device", "cpu");  // a loaded model starts on the CPU
  auto model = std::make_unique<DiffusionModel>(spec, meta.at("genes").string_array(),
                                                meta.at("condition_levels").string_array());
  torch::serialize::InputArchive network, ema;
  archive.read("network", network);
  archive.read("ema", ema);
  model->network_->load(network);
  model->ema_->load(ema);
  archive.read("gene_mean", model->mean_);
  archive.read("gene_sd", model->sd_);
  archive.read("clip_low", model->low_);
  archive.read("clip_high", model->high_);
  if (meta.at("trained").as_bool()) model->objective_.set_x0_bounds(model->low_, model->high_);
  Tensor theta;
  archive.read("theta", theta);
  model->theta_.assign(theta.data_ptr<double>(), theta.data_ptr<double>() + theta.numel());
  for (size_t l = 0; l < model->library_sizes_.size(); ++l) {
    Tensor sizes;
    archive.read("library_sizes_" + std::to_string(l), sizes);
    model->library_sizes_[l].assign(sizes.data_ptr<double>(), sizes.data_ptr<double>() + sizes.numel());
  }
  model->trained_ = meta.at("trained").as_bool();
  if (meta.contains("annotations")) model->annotations_ = Options::from_json(json::dump(meta.at("annotations")));
  model->history_ = history_from_json(meta.at("history"));
  return model;
}

std::unique_ptr<GenerativeModel> GenerativeModel::load(const std::string& path) {
  return DiffusionModel::load_file(path);
}

}  // namespace exprflow
