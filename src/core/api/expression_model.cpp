#include "api/expression_model.hpp"


#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>

#include "api/model_file.hpp"
#include "api/model_inputs.hpp"
#include "api/token_gradients.hpp"
#include "condition/condition_encoder.hpp"
#include "data/gene_scaling.hpp"
#include "data/split.hpp"
#include "decode/count_decoding.hpp"
#include "decode/negative_binomial.hpp"
#include "io/model_archive.hpp"
#include "models/compositions.hpp"
#include "objective/objectives.hpp"
#include "runtime/matmul_precision.hpp"
#include "api/lora_adapter.hpp"
#include "train/denoiser_task.hpp"
#include "train/ema.hpp"
#include "train/data_parallel.hpp"
#include "train/stage_checkpoints.hpp"
#include "train/trainer.hpp"

namespace exprflow {

namespace {

Tensor float_tensor(const std::vector<float>& v, const at::Device& device) {
  return at::tensor(v, at::TensorOptions().dtype(at::kFloat)).to(device);
}

}  // namespace

void check_resources(const Resources& resources) {
  for (const auto& [name, r] : resources) {
    if (name.empty()) throw std::invalid_argument("resource names must not be empty");
    int64_t size = r.shape.empty() ? 0 : 1;
    for (int64_t d : r.shape) {
      if (d < 0) throw std::invalid_argument("resource '" + name + "' has a negative dimension");
      size *= d;
    }
    if (static_cast<int64_t>(r.values.size()) != size) {
      throw std::invalid_argument("resource '" + name + "' has " + std::to_string(r.values.size()) +
                                  " values but its shape holds " + std::to_string(size));
    }
    if (!r.row_names.empty() && static_cast<int64_t>(r.row_names.size()) != r.shape[0]) {
      throw std::invalid_argument("resource '" + name + "' has " + std::to_string(r.row_names.size()) +
                                  " row names for " + std::to_string(r.shape[0]) + " rows");
    }
    if (!r.column_names.empty() && (r.shape.size() < 2 || static_cast<int64_t>(r.column_names.size()) != r.shape[1])) {
      throw std::invalid_argument("resource '" + name + "' has " + std::to_string(r.column_names.size()) +
                                  " column names that do not match its columns");
    }
  }
}

// ------------------------------------------------------------ construction ---
ExpressionModel::ExpressionModel(Options spec, std::vector<std::string> genes, std::vector<Covariate> covariates,
                                 Resources resources)
    : ModelRecord(std::move(spec), std::move(genes), std::move(covariates), std::move(resources)),
      objective_(make_objective(spec_)) {
  const double cfg_dropout = spec_.number("cfg_dropout");
  if (cfg_dropout < 0 || cfg_dropout >= 1) throw std::invalid_argument("setting 'cfg_dropout' must be in [0, 1)");
  const int64_t G = static_cast<int64_t>(genes_.size());
  for (auto* net : {&network_, &ema_}) {
    *net = std::make_shared<ComposedNetworkImpl>(spec_, G, covariate_specs(covariates_),
                                                 objective_->output_heads(), resources_);
  }
  network_->to(device_);
  prepare_average(*ema_, device_);
  // Until trained: identity scaling, no clipping box.
  scale_ = {at::zeros({G}, at::TensorOptions().dtype(at::kFloat).device(device_)),
            at::ones({G}, at::TensorOptions().dtype(at::kFloat).device(device_))};
  theta_.assign(G, kPoissonTheta);
  library_sizes_ = LibrarySizePools(static_cast<int>(covariates_.size()));
  calibration_ = GeneShareCalibration(static_cast<int>(G));
}

long ExpressionModel::parameter_count() const {
  long n = 0;
  for (const Tensor& p : network_->parameters()) n += p.numel();
  return n;
}

void ExpressionModel::set_scaling(const GeneScaling& s) {
  scale_ = {float_tensor(s.mean, device_), float_tensor(s.sd, device_)};
  // Clipping box in standardised units: the range of the training data.
  low_ = (float_tensor(s.min, device_) - scale_.mean) / scale_.sd;
  high_ = (float_tensor(s.max, device_) - scale_.mean) / scale_.sd;
  objective_->set_x0_bounds(low_, high_);
}

// ----------------------------------------------------------------- helpers ---
void ExpressionModel::check_genes(const ExpressionSource& data) const { check_model_genes(genes_, data); }

CellBatch ExpressionModel::batch(const ExpressionSource& data, const std::vector<int>& cells,
                                 const CovariateColumns& columns) const {
  return make_cell_batch(data, cells, columns, scale_, /*with_counts=*/false, device_);
}

Tensor ExpressionModel::scaled_batch(const ExpressionSource& data, const std::vector<int>& cells) const {
  return batch(data, cells, {}).expression;  // (B, G)
}

// ------------------------------------------------------------------- train ---
TrainReport ExpressionModel::train(const ExpressionSource& data, const CellCovariates& conditions,
                                   const Options& train_options, const TrainCallbacks& callbacks) {
  check_genes(data);
  Options options = default_train_options(spec_.text("architecture")).merged(train_options, /*known_only=*/true);
  if (!train_options.has("patience")) options.set("patience", static_cast<double>(objective_->default_patience()));
  const TrainerSettings settings = TrainerSettings::from(options);
  const bool lora = LoraSettings::from(options).rank > 0;
  if (lora && !trained_) throw std::invalid_argument("LoRA fine-tuning (lora_rank > 0) needs a trained model: train it first");
  const int n = data.n_cells();
  const CovariateColumns columns = columns_of(conditions, n);
  const CellSplit split = split_and_annotate(columns, n, options.number("validation_fraction"), settings.seed);
  check_training_cells(split);
  if (!trained_) {
    // The data's scale, dispersions and library sizes are fixed by the first
    // training run; fine-tuning keeps them so the network's inputs keep meaning.
    std::vector<int> detected;  // per training cell, for "matched" library sizes
    set_scaling(GeneScaling::fit(data, split.train, &detected));
    theta_ = estimate_nb_theta(data, split.train);
    library_sizes_.clear();
    for (size_t i = 0; i < split.train.size(); ++i) {
      const int c = split.train[i];
      library_sizes_.add(codes_of_cell(columns, covariates_, c), data.library_sizes()[c], detected[i]);
    }
    calibration_.clear();
  } else {
    // Continued training and fine-tuning widen the clipping box to the new
    // cells' range (in the first run's units), or new data outside the old
    // range could never be generated.
    const GeneScaling s = GeneScaling::fit(data, split.train);
    low_ = at::minimum(low_, (float_tensor(s.min, device_) - scale_.mean) / scale_.sd);
    high_ = at::maximum(high_, (float_tensor(s.max, device_) - scale_.mean) / scale_.sd);
    objective_->set_x0_bounds(low_, high_);
  }
  add_calibration_targets(data, columns, split.train);

  const CleanData clean = [&](const std::vector<int>& cells, at::Generator&) {
    CellBatch b = batch(data, cells, columns);
    return CleanCells{b.expression, b.covariates};
  };
  TrainingTask task = denoiser_task(*network_, *ema_, *objective_, clean, spec_.number("cfg_dropout"), settings);
  task.shuffle = [&data](std::vector<int>& order, std::mt19937_64& rng) { data.shuffle_epoch(order, rng); };
  task.prefetch = [&data](const std::vector<int>& cells) { data.prefetch(cells); };
  const StageCheckpoints checkpoints(CheckpointOptions::from(options), {"model"});
  checkpoints.attach(task, "model", [this] { return to_bytes(); });
  const std::shared_ptr<DataParallelGroup> group = join_group(GroupSettings::from(options));
  task.group = group.get();
  const TrainReport report = train_or_adapt(task, *network_, *ema_, options, split.train, split.validation, settings,
                                            callbacks, low_, high_, adapter_, annotations(),
                                            checkpoints.resume_state("model"));
  append_history(history_, report, lora ? "lora" : "model");
  trained_ = trained_ || report.steps > 0;
  if (report.steps > 0) {
    calibrate(columns, split.train);
    if (lora) write_gene_calibration(adapter_, calibration_);  // the adapter rebuilds the tuned model
  }
  return report;
}

// ------------------------------------------------------------- calibrate ---
void ExpressionModel::add_calibration_targets(const ExpressionSource& data, const CovariateColumns& columns,
                                              const std::vector<int>& cells) {
  const int G = static_cast<int>(genes_.size());
  constexpr int kBatch = 256;
  std::vector<float> counts(static_cast<size_t>(kBatch) * G);
  std::vector<double> cell_counts(G);  // (G,) one cell's counts; add_target() turns them into shares
  GeneShareCalibration these(G);
  for (size_t lo = 0; lo < cells.size(); lo += kBatch) {
    const std::vector<int> batch_cells(cells.begin() + lo, cells.begin() + std::min(cells.size(), lo + kBatch));
    data.fill_counts(batch_cells, counts.data());
    for (size_t i = 0; i < batch_cells.size(); ++i) {
      for (int g = 0; g < G; ++g) cell_counts[g] = counts[i * G + g];
      these.add_target(codes_of_cell(columns, covariates_, batch_cells[i]), cell_counts.data());
    }
  }
  calibration_.take_targets(these);
}

void ExpressionModel::calibrate(const CovariateColumns& columns, const std::vector<int>& cells) {
  // Up to kCalibrationCells training cells of each combination lend their
  // levels (and perturbation sets) to the sample, drawn with the default
  // sample options and the spec's guidance.
  std::map<std::vector<int>, int> taken;
  std::vector<int> rows;
  std::vector<std::vector<int>> row_codes;
  for (int c : cells) {
    std::vector<int> codes = codes_of_cell(columns, covariates_, c);
    if (taken[codes]++ >= kCalibrationCells) continue;
    rows.push_back(c);
    row_codes.push_back(std::move(codes));
  }
  if (rows.empty()) return;
  Options o = default_sample_options();
  if (spec_.has("guidance_scale")) o.set("guidance_scale", spec_.number("guidance_scale"));
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(o.integer("seed"));
  const std::vector<float> samples =
      sample_expression(sampling_network(o), sampler_settings(o), columns, rows, o.integer("batch_size"), generator);
  const int G = static_cast<int>(genes_.size());
  std::vector<double> mu(G);
  for (size_t i = 0; i < rows.size(); ++i) {
    expected_counts(samples.data() + i * G, G, 1.0, mu.data());
    calibration_.add_model(row_codes[i], mu.data());
  }
  calibration_.finish();
}

// ---------------------------------------------------------------- generate ---
SamplerSettings ExpressionModel::sampler_settings(const Options& o) const {
  if (o.integer("batch_size") < 1) throw std::invalid_argument("batch_size must be at least 1");
  return SamplerSettings::from(o, *objective_, low_, high_);
}

Denoiser ExpressionModel::sampling_network(const Options& sample_options) {
  return guided_sampler(*ema_, guidance_scales(sample_options, covariates_), !covariates_.empty());
}

GeneratedCells ExpressionModel::generate(const CellCovariates& conditions, const Options& sample_options) {
  if (!trained_) throw std::invalid_argument("the model has not been trained yet");
  const Options o = default_sample_options().merged(sample_options, /*known_only=*/true);
  if (o.text("unseen") != "joint" && o.text("unseen") != "default") {
    throw std::invalid_argument("unseen \"" + o.text("unseen") +
                                "\" needs a latent model: a gene-space model has no latent shift between combinations");
  }
  const MatmulPrecisionGuard precision(matmul_precision_of(o));  // of the network's products
  const SamplerSettings settings = sampler_settings(o);
  const long batch_size = o.integer("batch_size");
  const uint64_t seed = static_cast<uint64_t>(o.integer("seed"));
  const std::string library_size_method = library_sizes_.resolve(o.text("library_size"));
  const Denoiser network = sampling_network(o);
  const int G = static_cast<int>(genes_.size()), n = static_cast<int>(conditions.n_cells());
  const CovariateColumns columns = columns_of(conditions, n);

  GeneratedCells out = GeneratedCells::sized(G, n);
  out.library_size_method = library_size_method;
  const bool calibrated = resolve_gene_calibration(o.text("gene_calibration"), !calibration_.empty()) == "mean";
  out.gene_calibration = calibrated ? "mean" : "none";

  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  std::mt19937_64 rng(seed ^ 0xD1B54A32D192ED03ULL);
  out.logcounts = sample_expression(network, settings, columns, cell_range(0, n), batch_size, generator);
  // Counts: library sizes from training cells of the same levels ("matched":
  // in the order of the cells' detected genes), then the inverse of the
  // normalisation (see decode/count_decoding.hpp).
  std::vector<std::vector<int>> codes(n);
  std::vector<int> detected;  // only "matched" reads them
  for (int i = 0; i < n; ++i) {
    codes[i] = codes_of_cell(columns, covariates_, i);
    if (library_size_method == "matched") {
      detected.push_back(detected_genes(out.logcounts.data() + static_cast<size_t>(i) * G, G));
    }
  }
  out.library_size = library_sizes_.draw_all(codes, library_size_method, rng, detected);
  std::vector<double> mu(G);
  for (int i = 0; i < n; ++i) {
    const size_t at = static_cast<size_t>(i) * G;
    expected_counts(out.logcounts.data() + at, G, out.library_size[i], mu.data());
    if (calibrated) calibration_.apply(codes[i], mu.data());
    round_expected_counts(mu.data(), G, rng, out.counts.data() + at);
  }
  return out;
}

std::vector<float> ExpressionModel::sample_expression(const Denoiser& network, const SamplerSettings& settings,
                                                      const CovariateColumns& columns, const std::vector<int>& rows,
                                                      long batch_size, at::Generator& generator) {
  const int G = static_cast<int>(genes_.size()), n = static_cast<int>(rows.size());
  std::vector<float> logcounts(static_cast<size_t>(n) * G);
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min<int>(n, lo + batch_size);
    const Covariates covariates =
        covariates_of(columns, std::vector<int>(rows.begin() + lo, rows.begin() + hi), device_);
    Tensor x0 = sample(network, *objective_, covariates, hi - lo, G, device_, settings, generator);  // (B, G)
    Tensor y = at::clamp_min(x0 * scale_.sd + scale_.mean, 0.0).to(at::kCPU).contiguous();         // (B, G)
    std::memcpy(logcounts.data() + static_cast<size_t>(lo) * G, y.data_ptr<float>(), sizeof(float) * y.numel());
  }
  return logcounts;
}

// ------------------------------------------------------------------ decode ---
std::vector<float> ExpressionModel::decode(const std::vector<float>&, int, const CellCovariates&, const Options&) {
  throw std::invalid_argument("architecture '" + spec_.text("architecture") +
                              "' models expression itself and has no latent code to decode; the count VAE ('vae') "
                              "and the latent models ('latent_mlp', 'latent_dit', ...) have one");
}

// ------------------------------------------------------------- reconstruct ---
ReconstructedCells ExpressionModel::reconstruct(const ExpressionSource& data, const CellCovariates& conditions,
                                                const Options& options) {
  if (!trained_) throw std::invalid_argument("the model has not been trained yet");
  check_genes(data);
  Options defaults = default_sample_options();
  defaults.set("noise_level", 0.5);
  const Options o = defaults.merged(options, /*known_only=*/true);
  const MatmulPrecisionGuard precision(matmul_precision_of(o));  // of the network's products
  const SamplerSettings settings = sampler_settings(o);
  const double noise_level = o.number("noise_level");
  const int n = data.n_cells(), G = static_cast<int>(genes_.size());
  const CovariateColumns columns = columns_of(conditions, n);
  const Denoiser network = sampling_network(o);
  const long batch_size = o.integer("batch_size");

  ReconstructedCells out = ReconstructedCells::sized(G, n);
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(o.integer("seed")));
  std::vector<float> observed(static_cast<size_t>(batch_size) * G);
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min<int>(n, lo + batch_size);
    const std::vector<int> cells = cell_range(lo, hi);
    CellBatch b = batch(data, cells, columns);
    Tensor x0 = renoise_and_denoise(network, *objective_, b.expression, b.covariates, noise_level, settings,
                                    generator);                                                 // (B, G)
    Tensor y = at::clamp_min(x0 * scale_.sd + scale_.mean, 0.0).to(at::kCPU).contiguous();   // (B, G)
    float* logcounts = out.logcounts.data() + static_cast<size_t>(lo) * G;
    std::memcpy(logcounts, y.data_ptr<float>(), sizeof(float) * y.numel());
    data.fill_counts(cells, observed.data());
    for (size_t i = 0; i < cells.size(); ++i) {
      double* mu = out.expected_counts.data() + static_cast<size_t>(cells[i]) * G;
      expected_counts(logcounts + i * G, G, data.library_sizes()[cells[i]], mu);
      out.log_likelihood[cells[i]] = nb_log_likelihood(observed.data() + i * G, mu, G, theta_);
    }
  }
  return out;
}

// ---------------------------------------------------------------- transfer ---
GeneratedCells ExpressionModel::transfer(const ExpressionSource& data, const CellCovariates& from,
                                         const CellCovariates& to, const Options& options) {
  if (!trained_) throw std::invalid_argument("the model has not been trained yet");
  check_genes(data);
  const Options o = default_sample_options().merged(options, /*known_only=*/true);
  if (o.text("transfer_noise") != "drawn" && o.text("transfer_noise") != "default") {
    throw std::invalid_argument("transfer_noise \"" + o.text("transfer_noise") +
                                "\" needs a latent model: a gene-space model has no count law to carry counts through");
  }
  if (o.text("transfer_response") != "model") {
    throw std::invalid_argument("transfer_response \"" + o.text("transfer_response") +
                                "\" needs a latent model's shift: a gene-space model moves cells by its flow");
  }
  const MatmulPrecisionGuard precision(matmul_precision_of(o));  // of the network's products
  const SamplerSettings settings = sampler_settings(o);
  const Denoiser network = sampling_network(o);
  const int n = data.n_cells(), G = static_cast<int>(genes_.size());
  const CovariateColumns from_columns = columns_of(from, n), to_columns = columns_of(to, n);
  const long batch_size = o.integer("batch_size");

  GeneratedCells out = GeneratedCells::sized(G, n);
  out.library_size_method = "observed";
  torch::NoGradGuard no_grad;
  std::mt19937_64 rng(static_cast<uint64_t>(o.integer("seed")) ^ 0xD1B54A32D192ED03ULL);
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min<int>(n, lo + batch_size);
    const std::vector<int> cells = cell_range(lo, hi);
    const CellBatch b = batch(data, cells, from_columns);
    Tensor x0 = transfer_cells(network, *objective_, b.expression, b.covariates,
                               covariates_of(to_columns, cells, device_), settings, o.text("transfer"));  // (B, G)
    Tensor y = at::clamp_min(x0 * scale_.sd + scale_.mean, 0.0).to(at::kCPU).contiguous();   // (B, G)
    std::memcpy(out.logcounts.data() + static_cast<size_t>(lo) * G, y.data_ptr<float>(), sizeof(float) * y.numel());
  }
  for (int i = 0; i < n; ++i) {
    out.library_size[i] = data.library_sizes()[i];
    round_counts(out.logcounts.data() + static_cast<size_t>(i) * G, G, out.library_size[i], rng,
                 out.counts.data() + static_cast<size_t>(i) * G);
  }
  return out;
}

// -------------------------------------------------------------- interpret ---
std::vector<float> ExpressionModel::token_activations(const ExpressionSource& data, int* n_tokens) {
  return per_cell_rows(data, n_tokens, [this](const Tensor& x) {
    return ema_->tokens(x).norm(2, {2});  // (B, m)
  });
}

std::vector<float> ExpressionModel::token_gene_loadings(const std::string& method, const ExpressionSource* data,
                                                        int* n_tokens) {
  return token_loadings_by_method(
      method, data, [this](const ExpressionSource& d) { check_genes(d); },
      [this] { return ema_->token_weight_loadings(); },
      [&](int lo, int hi) { return scaled_batch(*data, cell_range(lo, hi)); },
      [this](const Tensor& x) { return ema_->tokens(x).norm(2, {2}); },  // (B, T)
      n_tokens);
}

// ------------------------------------------------------------------- embed ---
std::vector<float> ExpressionModel::embed(const ExpressionSource& data, int* dims) {
  return per_cell_rows(data, dims, [this](const Tensor& x) { return ema_->embed(x); });  // (B, D)
}

std::vector<float> ExpressionModel::per_cell_rows(const ExpressionSource& data, int* width,
                                                  const std::function<Tensor(const Tensor&)>& f) const {
  check_genes(data);
  torch::NoGradGuard no_grad;
  std::vector<float> result;
  const int n = data.n_cells(), batch_size = 256;
  for (int lo = 0; lo < n; lo += batch_size) {
    Tensor rows = f(scaled_batch(data, cell_range(lo, std::min(n, lo + batch_size)))).to(at::kCPU).contiguous();  // (B, W)
    *width = static_cast<int>(rows.size(1));
    result.insert(result.end(), rows.data_ptr<float>(), rows.data_ptr<float>() + rows.numel());
  }
  return result;
}

// --------------------------------------------------------------- save/load ---
std::string ExpressionModel::to_bytes() const {
  TensorBundle bundle;
  bundle.meta = generative_model_meta(*this);
  bundle.put_module("network", *network_);
  bundle.put_module("ema", *ema_);
  bundle.put("gene_mean", scale_.mean);
  bundle.put("gene_sd", scale_.sd);
  if (low_.defined()) {
    bundle.put("clip_low", low_);
    bundle.put("clip_high", high_);
  }
  bundle.put("theta", at::tensor(theta_, at::TensorOptions().dtype(at::kDouble)));
  write_library_sizes(bundle, library_sizes_);
  write_gene_calibration(bundle, calibration_);
  write_adapter(bundle, adapter_);
  write_resources(bundle, resources_);
  return model_file_bytes(bundle);
}

std::unique_ptr<ExpressionModel> ExpressionModel::read_model(const TensorBundle& bundle) {
  const Json& meta = bundle.meta;
  auto model = std::make_unique<ExpressionModel>(loaded_spec(meta), meta.at("genes").get<std::vector<std::string>>(),
                                                 read_covariates(meta),
                                                 read_resources(bundle));
  bundle.get_module("network", *model->network_);
  bundle.get_module("ema", *model->ema_);
  const int64_t G = static_cast<int64_t>(model->genes().size());
  model->scale_.mean = bundle.get("gene_mean", {G}, at::kFloat).clone();
  model->scale_.sd = bundle.get("gene_sd", {G}, at::kFloat).clone();
  model->trained_ = meta.at("trained").get<bool>();
  if (model->trained_) {
    model->low_ = bundle.get("clip_low", {G}, at::kFloat).clone();
    model->high_ = bundle.get("clip_high", {G}, at::kFloat).clone();
    model->objective_->set_x0_bounds(model->low_, model->high_);
  }
  const Tensor& theta = bundle.get("theta");
  if (theta.scalar_type() != at::kDouble || theta.dim() != 1) throw std::invalid_argument("'theta' is not a vector of doubles");
  model->theta_.assign(theta.data_ptr<double>(), theta.data_ptr<double>() + theta.numel());
  read_library_sizes(bundle, model->library_sizes_);
  read_gene_calibration(bundle, model->calibration_, static_cast<int>(model->covariates_.size()));
  model->adapter_ = read_adapter(bundle);
  model->restore_record(meta);
  return model;
}

}  // namespace exprflow

namespace exprflow {

std::string ExpressionModel::adapter_bytes() const { return adapter_file_bytes(adapter_); }

void ExpressionModel::apply_adapter(std::string_view bytes, const std::string& source) {
  adapter_ = apply_adapter_and_box(bytes, source, *network_, *ema_, low_, high_, history_);
  objective_->set_x0_bounds(low_, high_);
  // Adapters written since the calibration carry the tuned model's.
  if (adapter_.has("gene_share_target_cells")) {
    read_gene_calibration(adapter_, calibration_, static_cast<int>(covariates_.size()));
  }
  annotations() = annotations().merged(adapter_annotations(adapter_), /*known_only=*/false);
}

}  // namespace exprflow
