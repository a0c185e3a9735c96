#include "api/latent_model.hpp"


#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "api/model_file.hpp"
#include "api/model_inputs.hpp"
#include "api/token_gradients.hpp"
#include "data/coexpression_stand_ins.hpp"
#include "data/expression_source.hpp"
#include "data/principal_axes.hpp"
#include "decode/gene_share_calibration.hpp"
#include "decode/log_rounding.hpp"
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

// The latent shift's context bandwidth from the options: a positive number,
// or -1 for infinity (options hold finite numbers only).
double shift_bandwidth_of(const Options& o) {
  const double b = o.number("shift_bandwidth");
  if (b == -1) return std::numeric_limits<double>::infinity();
  if (!(b > 0)) throw std::invalid_argument("shift_bandwidth must be positive, or -1 for infinity (contexts alike)");
  return b;
}

// transfer_noise: "cell" (the default) keeps each observed count's quantile,
// "drawn" draws anew. Kang 2018, a "vae" moving each of six cell types'
// control cells to the stimulated condition with the latent shift (mean over
// the types; inst/scripts/perturbation_kang.R): energy distance to the real
// stimulated cells 2.04 kept against 5.72 drawn (mean shift 2.74), squared
// Pearson of mean expression 0.933 against 0.923.
// transfer_response: "model" (the default) moves a cell as the decoder does
// at its shifted code; "observed" (transfer mode "shift", noise "cell")
// anchors the mean response per gene on the training cells' observed change
// in mean log expression between the contexts, each cell departing from it as
// the model says; "both" anchors it halfway between the observed change and
// the model's own mean change (their errors are partly independent). The
// weight of the observed change: 0, 1 or 0.5. Kang 2018 as above: see
// transfer_cells() in R for the figures.
double observed_response_weight(const std::string& response) {
  if (response == "model") return 0.0;
  if (response == "observed") return 1.0;
  if (response == "both") return 0.5;
  throw std::invalid_argument("transfer_response must be \"model\", \"observed\" or \"both\", got \"" + response +
                              "\"");
}

bool transfer_keeps_noise(const std::string& noise) {
  if (noise != "default" && noise != "cell" && noise != "drawn") {
    throw std::invalid_argument("transfer_noise must be \"default\", \"cell\" or \"drawn\", got \"" + noise +
                                "\"");
  }
  return noise != "drawn";
}

Tensor index_tensor(const std::vector<int>& cells, const at::Device& device) {
  std::vector<int64_t> idx(cells.begin(), cells.end());
  return at::tensor(idx, at::TensorOptions().dtype(at::kLong)).to(device);
}

// The options of one stage: for the VAE stage of a two-stage model the
// vae_* keys stand in for the plain ones.
Options vae_stage_options(const Options& all, bool two_stages) {
  Options o = all;
  if (!two_stages) return o;
  for (const char* key : {"epochs", "batch_size", "learning_rate", "ema_decay", "patience"}) {
    o.set(key, all.number(std::string("vae_") + key));
  }
  return o;
}

// Cap on the values (cells x genes) the input projection is fitted on: 10,000
// cells of 2,000 genes (the SVD works on a double copy, 160 MB).
constexpr int64_t kMaxProjectionValues = 20'000'000;

// Fraction of cells whose condition the VAE stage replaces by null.
constexpr double kVaeConditionDropout = 0.1;

}  // namespace

// ------------------------------------------------------------ construction ---
LatentModel::LatentModel(Options spec, std::vector<std::string> genes, std::vector<Covariate> covariates,
                         Resources resources)
    : ModelRecord(std::move(spec), std::move(genes), std::move(covariates), std::move(resources)),
      library_sizes_(static_cast<int>(covariates_.size())) {
  const int64_t G = static_cast<int64_t>(genes_.size());
  CountVaeSettings settings = CountVaeSettings::from(spec_);
  if (settings.encoder != "mlp") {
    // A token encoder's code width follows from its tokens (gene sets, or
    // vae_set_tokens), and the flow's latent split gives each encoder token's
    // k values a token of their own.
    // A width the user set otherwise is an error, not silently replaced (a
    // saved model's spec holds the derived values, which pass).
    settings.latent_dim = CountVaeImpl::latent_dim_for(settings, resources_, G);
    const Options defaults = composition_defaults(spec_.text("architecture"), spec_.text("objective", ""));
    auto derive = [&](const std::string& key, int64_t value, const std::string& why) {
      if (spec_.has(key) && defaults.has(key) && spec_.number(key) != defaults.number(key) &&
          spec_.number(key) != static_cast<double>(value)) {
        throw std::invalid_argument("setting '" + key + "' follows from the encoder's tokens with vae_encoder = '" +
                                    settings.encoder + "' (" + why + " = " + std::to_string(value) +
                                    "); leave it unset");
      }
      spec_.set(key, static_cast<double>(value));
    };
    const int64_t n_encoder_tokens = settings.latent_dim / settings.latent_per_token;
    derive("latent_dim", settings.latent_dim,
           std::to_string(n_encoder_tokens) + " tokens x latent_per_token " + std::to_string(settings.latent_per_token));
    if (composition(spec_.text("architecture")).tokenizer == "latent_split") {
      derive("n_tokens", n_encoder_tokens, "one flow token per encoder token");
    }
  }
  vae_ = CountVae(G, covariate_specs(covariates_), settings, resources_);
  vae_average_ = CountVae(G, covariate_specs(covariates_), settings, resources_);
  vae_->to(device_);
  prepare_average(*vae_average_, device_);

  if (!composition(spec_.text("architecture")).objective.empty()) {
    const double cfg_dropout = spec_.number("cfg_dropout");
    if (cfg_dropout < 0 || cfg_dropout >= 1) throw std::invalid_argument("setting 'cfg_dropout' must be in [0, 1)");
    objective_ = make_objective(spec_);
    const int64_t d = settings.latent_dim, heads = objective_->output_heads();
    network_ = std::make_shared<ComposedNetworkImpl>(spec_, d, covariate_specs(covariates_), heads, resources_);
    ema_ = std::make_shared<ComposedNetworkImpl>(spec_, d, covariate_specs(covariates_), heads, resources_);
    network_->to(device_);
    prepare_average(*ema_, device_);
  }
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device_);
  identity_ = {at::zeros({G}, options), at::ones({G}, options)};
  z_mean_ = at::zeros({settings.latent_dim}, options);
  z_sd_ = at::ones({settings.latent_dim}, options);
  std::vector<std::string> names;
  for (const Covariate& c : covariates_) names.push_back(c.name);
  centroids_ = CovariateCentroids(names, static_cast<int>(settings.latent_dim));
  expression_centroids_ = CovariateCentroids(names, G);
}

long LatentModel::parameter_count() const {
  long n = 0;
  for (const Tensor& p : vae_->parameters()) n += p.numel();
  if (network_) {
    for (const Tensor& p : network_->parameters()) n += p.numel();
  }
  return n;
}

bool LatentModel::trained() const { return vae_trained_ && (!has_latent_model() || latent_trained_); }

std::string LatentModel::default_sampler() const {
  return objective_ ? objective_->default_sampler() : "prior";
}

CellBatch LatentModel::batch(const ExpressionSource& data, const std::vector<int>& cells,
                             const CovariateColumns& columns) const {
  return make_cell_batch(data, cells, columns, identity_, /*with_counts=*/true, device_);
}

// ------------------------------------------------------------------- train ---
TrainReport LatentModel::train(const ExpressionSource& data, const CellCovariates& conditions,
                               const Options& train_options, const TrainCallbacks& callbacks) {
  check_model_genes(genes_, data);
  Options options = default_train_options(spec_.text("architecture")).merged(train_options, /*known_only=*/true);
  // The latent model's patience, unless given, is its objective's (flow: none).
  if (has_latent_model() && !train_options.has("patience")) {
    options.set("patience", static_cast<double>(objective_->default_patience()));
  }
  const int n = data.n_cells();
  const CovariateColumns columns = columns_of(conditions, n);
  const CellSplit split = split_and_annotate(columns, n, options.number("validation_fraction"),
                                             static_cast<uint64_t>(options.integer("seed")));
  check_training_cells(split);
  if (!vae_trained_) {
    // Fixed by the first training run, as the gene-space models' scaling.
    library_sizes_.clear();
    for (int c : split.train) library_sizes_.add(codes_of_cell(columns, covariates_, c), data.library_sizes()[c]);
    if (vae_->settings().input == "pca") fit_input_projection(data, split.train);
  }

  TrainReport report;
  const bool lora = LoraSettings::from(options).rank > 0;
  if (lora && !has_latent_model()) {
    throw std::invalid_argument("LoRA fine-tuning adapts a latent model's flow; the 'vae' has none");
  }
  if (lora && !trained()) {
    throw std::invalid_argument("LoRA fine-tuning (lora_rank > 0) needs a trained model: train it first");
  }
  const Options vae_options = vae_stage_options(options, has_latent_model());
  // Stages a resumed run had finished are skipped: their weights are in the
  // model the checkpoint holds.
  const StageCheckpoints checkpoints(CheckpointOptions::from(options),
                                     has_latent_model() ? std::vector<std::string>{"vae", "latent"}
                                                        : std::vector<std::string>{"vae"});
  // Both stages train in the same group of processes (each rank encodes
  // every cell between them: the same codes on every rank).
  const std::shared_ptr<DataParallelGroup> group = join_group(GroupSettings::from(options));
  if (!lora && !checkpoints.finished("vae") && (vae_options.integer("epochs") > 0 || !vae_trained_)) {
    report = train_vae(data, columns, split, vae_options, callbacks, checkpoints, group.get());
    if (report.interrupted) return report;
  }
  // Both the latent model and the centroids read the trained encoder's codes of every cell.
  const Posterior q = posteriors(data);  // (N, d) each
  if (!lora) {  // LoRA leaves the VAE, and so its codes, as they were
    fit_centroids(q, columns);
    fit_expression_centroids(data, columns);
  }
  if (has_latent_model()) {
    const TrainReport latent = train_latent(q, columns, split, options, callbacks, checkpoints, group.get());
    report.history.insert(report.history.end(), latent.history.begin(), latent.history.end());
    report.steps += latent.steps;
    report.interrupted = latent.interrupted;
    report.stopped_early = latent.stopped_early;
    report.best_epoch = latent.best_epoch;
  }
  return report;
}

TrainReport LatentModel::train_vae(const ExpressionSource& data, const CovariateColumns& columns,
                                   const CellSplit& split, const Options& options, const TrainCallbacks& callbacks,
                                   const StageCheckpoints& checkpoints, DataParallelGroup* group) {
  const TrainerSettings settings = TrainerSettings::from(options);
  const TrainerState* resume = checkpoints.resume_state("vae");
  const double kl_weight = options.number("kl_weight"), kl_warmup = options.number("kl_warmup");
  if (kl_weight < 0) throw std::invalid_argument("kl_weight must be at least 0");
  if (kl_warmup < 0 || kl_warmup > 1) throw std::invalid_argument("kl_warmup must be in [0, 1]");
  // Steps of the whole run: with several processes, a step takes batch_size cells on each.
  const long cells_per_step = settings.batch_size * (group ? group->size() : 1);
  const long steps_per_epoch = (static_cast<long>(split.train.size()) + cells_per_step - 1) / cells_per_step;
  const double warmup_steps = kl_warmup * steps_per_epoch * settings.epochs;
  if (callbacks.on_stage) callbacks.on_stage("vae");

  long step = 0;  // the KL warm-up's clock: the trainer's step (resumed runs and every rank agree)
  TrainingTask task;
  task.before_step = [&step](long now) { step = now; };
  task.module = vae_.get();
  task.ema = vae_average_.get();
  task.shuffle = [&data](std::vector<int>& order, std::mt19937_64& rng) { data.shuffle_epoch(order, rng); };
  task.prefetch = [&data](const std::vector<int>& cells) { data.prefetch(cells); };
  task.batch_loss = [&](const std::vector<int>& cells, at::Generator& generator) {
    // KL warm-up: the weight rises linearly from 0 so the decoder learns to
    // use z before the prior pulls the posteriors together.
    const double beta = kl_weight * (warmup_steps > 0 ? std::min(1.0, step / warmup_steps) : 1.0);
    CellBatch b = batch(data, cells, columns);
    // Some cells train the null condition (for a VAE that reads it: its
    // encoder, decoder or dispersion), which generation for cells without a
    // condition uses.
    const Covariates c = drop_covariates(b.covariates, kVaeConditionDropout, generator);
    ElboTerms terms = vae_->elbo(b.expression, b.counts, b.library_size, c, generator);
    return (terms.reconstruction + beta * terms.kl).mean();
  };
  task.validation_loss = [&](const std::vector<int>& cells) {
    // The negative ELBO at the full KL weight, with fixed draws: comparable
    // across epochs whatever the warm-up.
    return fixed_noise_mean(cells, settings.batch_size, settings.seed,
                            [&](const std::vector<int>& part, at::Generator& generator) {
                              CellBatch b = batch(data, part, columns);
                              ElboTerms terms =
                                  vae_->elbo(b.expression, b.counts, b.library_size, b.covariates, generator);
                              return (terms.reconstruction + kl_weight * terms.kl).sum().item<double>();
                            });
  };
  checkpoints.attach(task, "vae", [this] { return to_bytes(); });
  task.group = group;
  TrainReport report = run_training(task, split.train, split.validation, settings, callbacks, resume);
  for (EpochRecord& r : report.history) r.stage = "vae";
  append_history(history_, report, "vae");
  vae_trained_ = vae_trained_ || report.steps > 0;
  return report;
}

void LatentModel::fit_input_projection(const ExpressionSource& data, const std::vector<int>& train) {
  // At most kMaxProjectionValues expression values: a seeded subsample of
  // the training cells on large data (the axes of a few thousand cells are
  // those of all of them, to sampling error).
  const size_t max_cells = std::max<size_t>(
      2, static_cast<size_t>(kMaxProjectionValues / std::max<int64_t>(1, static_cast<int64_t>(genes_.size()))));
  std::vector<int> cells = train;
  if (cells.size() > max_cells) {
    std::mt19937_64 rng(static_cast<uint64_t>(spec_.integer("seed")));
    std::shuffle(cells.begin(), cells.end(), rng);
    cells.resize(max_cells);
    std::sort(cells.begin(), cells.end());
  }
  // Expression only: the counts a training batch carries are not needed here.
  const Tensor x = make_cell_batch(data, cells, {}, identity_, /*with_counts=*/false, device_).expression;  // (n, G)
  const PrincipalAxes axes = principal_axes(x, vae_->settings().input_pcs, static_cast<uint64_t>(spec_.integer("seed")));
  vae_->set_input_projection(axes.mean, axes.rotation);
  vae_average_->set_input_projection(axes.mean, axes.rotation);
}

Posterior LatentModel::posteriors(const ExpressionSource& data) {
  torch::NoGradGuard no_grad;
  std::vector<Tensor> means, vars;
  const int n = data.n_cells(), batch_size = 512;
  for (int lo = 0; lo < n; lo += batch_size) {
    const Posterior q = vae_average_->encode(batch(data, cell_range(lo, std::min(n, lo + batch_size)), {}).expression, {});
    means.push_back(q.mean);
    vars.push_back(q.var);
  }
  return {at::cat(means), at::cat(vars)};  // (N, d) each
}

Tensor LatentModel::latent_codes(const ExpressionSource& data) { return posteriors(data).mean; }

void LatentModel::fit_centroids(const Posterior& q, const CovariateColumns& columns) {
  centroids_.clear();
  const Tensor means = q.mean.to(at::kCPU).contiguous();  // (N, d)
  const int64_t d = means.size(1);
  const float* row = means.data_ptr<float>();
  for (int64_t i = 0; i < means.size(0); ++i) centroids_.add(codes_of_cell(columns, covariates_, i), row + i * d);
}

void LatentModel::fit_expression_centroids(const ExpressionSource& data, const CovariateColumns& columns) {
  expression_centroids_.clear();
  const int n = data.n_cells(), batch_size = 512;
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min(n, lo + batch_size);
    const Tensor x = make_cell_batch(data, cell_range(lo, hi), {}, identity_, /*with_counts=*/false,
                                     at::Device(at::kCPU)).expression.contiguous();  // (B, G)
    const int64_t G = x.size(1);
    const float* row = x.data_ptr<float>();
    for (int i = lo; i < hi; ++i) expression_centroids_.add(codes_of_cell(columns, covariates_, i), row + (i - lo) * G);
  }
}

TrainReport LatentModel::train_latent(const Posterior& q, const CovariateColumns& columns,
                                      const CellSplit& split, const Options& options,
                                      const TrainCallbacks& callbacks, const StageCheckpoints& checkpoints,
                                      DataParallelGroup* group) {
  const TrainerSettings settings = TrainerSettings::from(options);
  // What the latent model learns: the aggregate posterior, codes drawn from
  // q(z | x) afresh for every minibatch ("sample"), the distribution the
  // decoder and its dispersion were trained on; or the posterior means
  // ("mean"), a narrower one. Standardised: the flow starts from N(0, I), so
  // codes of unit scale per dimension make its paths comparably long in
  // every one.
  const std::string codes_kind = spec_.text("latent_codes");
  if (codes_kind != "sample" && codes_kind != "mean") {
    throw std::invalid_argument("setting 'latent_codes' must be 'sample' or 'mean', got '" + codes_kind + "'");
  }
  const bool draw = codes_kind == "sample";
  const Tensor train_index = index_tensor(split.train, device_);
  Tensor train_means = q.mean.index_select(0, train_index);  // (n, d)
  if (!latent_trained_) {
    // Fixed by the first training run: continued training and fine-tuning
    // keep the standardisation, so the flow's inputs keep their meaning.
    z_mean_ = train_means.mean(0);
    // Var of a draw = var of the means + mean posterior variance.
    Tensor variance = train_means.var(0);
    if (draw) variance = variance + q.var.index_select(0, train_index).mean(0);
    z_sd_ = variance.sqrt().clamp_min(1e-3);
  }
  const Tensor z = (q.mean - z_mean_) / z_sd_;  // (N, d)
  const Tensor z_noise_sd = q.var.sqrt() / z_sd_;  // (N, d)
  // Clipping box: the training codes' range, widened by 3 posterior sds when drawing.
  Tensor z_train = z.index_select(0, train_index);
  Tensor margin = draw ? 3.0 * z_noise_sd.index_select(0, train_index) : at::zeros_like(z_train);
  const Tensor low = std::get<0>((z_train - margin).min(0)), high = std::get<0>((z_train + margin).max(0));
  // Continued training widens the box to the new cells' range too.
  z_low_ = latent_trained_ ? at::minimum(z_low_, low) : low;
  z_high_ = latent_trained_ ? at::maximum(z_high_, high) : high;
  objective_->set_x0_bounds(z_low_, z_high_);
  const CleanData codes = [&](const std::vector<int>& cells, at::Generator& generator) {
    const Tensor index = index_tensor(cells, device_);
    Tensor x0 = z.index_select(0, index);  // (B, d)
    if (draw) {
      Tensor noise = at::normal(0.0, 1.0, x0.sizes(), generator, at::TensorOptions().dtype(at::kFloat)).to(device_);
      x0 = x0 + z_noise_sd.index_select(0, index) * noise;  // (B, d)
    }
    return CleanCells{x0, covariates_of(columns, cells, device_)};
  };
  if (callbacks.on_stage) callbacks.on_stage("latent");
  TrainingTask task = denoiser_task(*network_, *ema_, *objective_, codes, spec_.number("cfg_dropout"), settings);
  checkpoints.attach(task, "latent", [this] { return to_bytes(); });
  task.group = group;
  TrainReport report = train_or_adapt(task, *network_, *ema_, options, split.train, split.validation, settings,
                                      callbacks, z_low_, z_high_, adapter_, annotations(),
                                      checkpoints.resume_state("latent"));
  const std::string stage = LoraSettings::from(options).rank > 0 ? "lora" : "latent";
  for (EpochRecord& r : report.history) r.stage = stage;
  append_history(history_, report, stage);
  latent_trained_ = latent_trained_ || report.steps > 0;
  return report;
}

// ---------------------------------------------------------------- generate ---
GeneratedCells LatentModel::generate(const CellCovariates& conditions, const Options& sample_options) {
  if (!trained()) throw std::invalid_argument("the model has not been trained yet");
  const Options o = default_sample_options().merged(sample_options, /*known_only=*/true);
  const MatmulPrecisionGuard precision(matmul_precision_of(o));  // of the network's products
  const long batch_size = o.integer("batch_size");
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  const uint64_t seed = static_cast<uint64_t>(o.integer("seed"));
  const std::string library_size_method = library_sizes_.resolve(o.text("library_size"));
  if (library_size_method == "matched") {
    throw std::invalid_argument("library_size 'matched' is for gene-space models: a latent model draws its counts from "
                                "its decoder at the drawn size; use 'empirical' or 'lognormal'");
  }
  if (o.text("gene_calibration") == "mean") {
    throw std::invalid_argument("gene_calibration 'mean' is for gene-space models: a latent model's decoder gives "
                                "its genes' shares; use 'none'");
  }
  resolve_gene_calibration(o.text("gene_calibration"), /*has_factors=*/false);  // checks the name
  SamplerSettings settings;
  Denoiser network;
  if (has_latent_model()) {
    settings = SamplerSettings::from(o, *objective_, z_low_, z_high_);
    // Unless the caller sets it, guidance is the model's own default.
    GuidanceScales scales;
    if (sample_options.has("guidance_scale")) {
      scales = guidance_scales(o, covariates_);
    } else {
      scales.joint = spec_.number("guidance_scale");
    }
    network = guided_sampler(*ema_, scales, !covariates_.empty());
  }
  const int G = static_cast<int>(genes_.size()), n = static_cast<int>(conditions.n_cells());
  const int64_t d = z_mean_.size(0);
  const CovariateColumns columns = columns_of(conditions, n);
  // The levels the flow samples under: the asked-for ones, or for a
  // combination no training cell had, a seen one and the latent shift to it.
  CovariateColumns sampled = columns;
  std::vector<std::vector<float>> shifts(n);  // per cell: (d,) or empty
  if (unseen_by_shift(o.text("unseen"))) {
    centroids_.set_context_bandwidth(shift_bandwidth_of(o));
    plan_unseen_combinations(columns, sampled, shifts);
    const bool any_shifted = std::any_of(shifts.begin(), shifts.end(), [](const auto& s) { return !s.empty(); });
    if (any_shifted && observed_response_weight(o.text("transfer_response")) > 0) {
      return generate_at_anchors_then_move(conditions, sampled, o);
    }
  }

  GeneratedCells out = GeneratedCells::sized(G, n);
  out.library_size_method = library_size_method;
  std::mt19937_64 rng(seed ^ 0xD1B54A32D192ED03ULL);
  std::vector<std::vector<int>> codes(n);
  for (int i = 0; i < n; ++i) codes[i] = codes_of_cell(columns, covariates_, i);
  out.library_size = library_sizes_.draw_all(codes, library_size_method, rng);

  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min<int>(n, lo + batch_size);
    const std::vector<int> cells = cell_range(lo, hi);
    const Covariates covariates = covariates_of(columns, cells, device_);
    Tensor z;  // (B, d)
    if (has_latent_model()) {
      z = sample(network, *objective_, covariates_of(sampled, cells, device_), hi - lo, d, device_, settings,
                 generator) * z_sd_ + z_mean_;
      z = z + shift_rows(shifts, cells, d);  // (B, d)
    } else {
      z = at::normal(0.0, 1.0, {hi - lo, d}, generator, at::TensorOptions().dtype(at::kFloat)).to(device_);
    }
    store_counts(draw_counts(z, covariates, lo, generator, out), lo, out);
  }
  return out;
}

Tensor LatentModel::draw_counts(const Tensor& z, const Covariates& covariates, int lo, at::Generator& generator,
                                const GeneratedCells& out) {
  const int hi = lo + static_cast<int>(z.size(0));
  const LikelihoodParams params = vae_average_->decode(z, covariates);
  std::vector<double> sizes(out.library_size.begin() + lo, out.library_size.begin() + hi);
  Tensor library = at::tensor(sizes, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat).to(device_);  // (B,)
  return vae_average_->likelihood().sample(params, library, generator);  // (B, G)
}

void LatentModel::store_counts(const Tensor& drawn, int lo, GeneratedCells& out) {
  const int G = out.n_genes;
  Tensor counts = drawn.to(at::kCPU).to(at::kFloat);  // (B, G)
  // Log-normalised as observed cells are: by each cell's own total.
  Tensor total = counts.sum(1, /*keepdim=*/true).clamp_min(1.0);                                 // (B, 1)
  Tensor logcounts = at::log1p(counts / total * kNormalisationTarget).contiguous();              // (B, G)
  Tensor whole = counts.to(at::kInt).contiguous();
  std::memcpy(out.logcounts.data() + static_cast<size_t>(lo) * G, logcounts.data_ptr<float>(),
              sizeof(float) * logcounts.numel());
  std::memcpy(out.counts.data() + static_cast<size_t>(lo) * G, whole.data_ptr<int32_t>(),
              sizeof(int32_t) * whole.numel());
}

// unseen: "shift" (the default) samples a combination of levels no training
// cell had at a seen one and adds the latent shift; "joint" asks the flow
// for the combination itself.
bool LatentModel::unseen_by_shift(const std::string& unseen) const {
  if (unseen != "default" && unseen != "shift" && unseen != "joint") {
    throw std::invalid_argument("unseen must be \"default\", \"shift\" or \"joint\", got \"" + unseen + "\"");
  }
  return unseen != "joint" && has_latent_model() && !centroids_.empty();
}

void LatentModel::plan_unseen_combinations(const CovariateColumns& columns, CovariateColumns& sampled,
                                           std::vector<std::vector<float>>& shifts) const {
  // A perturbation set keeps its members: its own embedding composes them.
  std::vector<bool> movable;
  for (const Covariate& c : covariates_) movable.push_back(!c.perturbation_set);
  for (size_t i = 0; i < shifts.size(); ++i) {
    const std::vector<int> codes = codes_of_cell(columns, covariates_, i);
    // Only combinations of levels each seen on its own: a level no training
    // cell had has no shift to it (and unknown levels are the flow's null).
    bool levels_seen = true;
    for (size_t j = 0; j < codes.size() && levels_seen; ++j) {
      levels_seen = codes[j] >= 0 && centroids_.has_level(static_cast<int>(j), codes[j]);
    }
    if (!levels_seen || centroids_.cells_of(codes) > 0) continue;
    const std::vector<int> anchor = centroids_.nearest_seen(codes, movable);
    if (anchor.empty()) continue;  // nothing seen one level away: the flow is asked directly
    for (size_t j = 0; j < covariates_.size(); ++j) sampled[covariates_[j].name][i] = anchor[j];
    shifts[i] = centroids_.shift(anchor, codes);
  }
}

// Generated at the anchors, the cells of an unseen combination move as
// observed cells do under transfer "shift": each count carried to its
// quantile under the shifted code's law, the mean change per gene anchored
// on the training cells' observed change (or halfway to the decoder's).
// Measured on Kang 2018 (latent_mlp, each of six cell types' stimulated
// cells generated without any in training; R's generate_cells()): see its
// `response`. Cells of seen combinations are moved to their own levels,
// which returns them unchanged.
GeneratedCells LatentModel::generate_at_anchors_then_move(const CellCovariates& conditions,
                                                         const CovariateColumns& sampled, const Options& o) {
  CellCovariates at_anchors = conditions;
  at_anchors.condition.clear();
  at_anchors.by_name = CovariateCodes(sampled.begin(), sampled.end());
  // Sampled where they are seen (a cell without an anchor keeps its levels
  // and has no shift), so this generate() returns without moving.
  const GeneratedCells anchored = generate(at_anchors, o);
  const int n = anchored.n_cells;
  const std::vector<double> counts(anchored.counts.begin(), anchored.counts.end());  // genes x cells
  const DenseExpressionSource cells(genes_, n, counts.data());
  Options move = o;
  move.set("transfer", "shift").set("transfer_noise", "cell");
  GeneratedCells moved = transfer(cells, at_anchors, conditions, move);
  moved.library_size_method = anchored.library_size_method;  // the moved cells keep the anchors' sizes
  return moved;
}

Tensor LatentModel::shift_rows(const std::vector<std::vector<float>>& shifts, const std::vector<int>& cells,
                               int64_t d) const {
  std::vector<float> rows(cells.size() * d, 0.0f);  // (B x d)
  for (size_t r = 0; r < cells.size(); ++r) {
    const std::vector<float>& s = shifts[cells[r]];
    std::copy(s.begin(), s.end(), rows.begin() + static_cast<int64_t>(r) * d);
  }
  return at::tensor(rows, at::TensorOptions().dtype(at::kFloat)).view({-1, d}).to(device_);  // (B, d)
}

// ---------------------------------------------------------------- transfer ---
GeneratedCells LatentModel::transfer(const ExpressionSource& data, const CellCovariates& from,
                                     const CellCovariates& to, const Options& options) {
  if (!trained()) throw std::invalid_argument("the model has not been trained yet");
  check_model_genes(genes_, data);
  const Options o = default_sample_options().merged(options, /*known_only=*/true);
  const MatmulPrecisionGuard precision(matmul_precision_of(o));  // of the network's products
  const long batch_size = o.integer("batch_size");
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  const std::string mode = o.text("transfer");
  const bool shift = mode == "shift";
  const bool keep_noise = transfer_keeps_noise(o.text("transfer_noise"));
  if (shift && centroids_.empty()) {
    throw std::invalid_argument("transfer mode 'shift' needs the training cells' mean codes, which this model "
                                "file does not hold (it predates them): train the model again");
  }
  const double observed_weight = observed_response_weight(o.text("transfer_response"));
  const bool observed_response = observed_weight > 0;
  if (observed_response) {
    if (!shift) {
      throw std::invalid_argument("the observed response anchors the latent shift: it needs transfer mode 'shift', "
                                  "not '" + mode + "'");
    }
    if (!keep_noise) {
      throw std::invalid_argument("the observed response moves each cell's own counts: it needs transfer_noise "
                                  "\"cell\", not \"drawn\"");
    }
    if (expression_centroids_.empty()) {
      throw std::invalid_argument("the observed response needs the training cells' mean expression per context, "
                                  "which this model file does not hold (it predates it): train the model again, or "
                                  "ask for the model's own response (transfer_response \"model\"; in R, "
                                  "response = \"model\")");
    }
  }
  SamplerSettings settings;
  Denoiser network;
  if (has_latent_model() && !shift) {
    settings = SamplerSettings::from(o, *objective_, z_low_, z_high_);
    network = guided_sampler(*ema_, guidance_scales(o, covariates_), !covariates_.empty());
  } else if (!shift) {
    check_transfer_mode(mode);
  }
  const int n = data.n_cells(), G = static_cast<int>(genes_.size());
  const CovariateColumns from_columns = columns_of(from, n);
  // The latent shift may move cells to targets no training cell has, through
  // their stand-ins: the embedding tables never see those members.
  const CovariateColumns to_columns = columns_of(to, n, /*skip_unknown_members=*/shift);
  const std::vector<PerturbationLevels> from_perturbations = perturbation_levels(covariates_, from);
  std::vector<PerturbationLevels> to_perturbations = perturbation_levels(covariates_, to);
  if (shift) {
    centroids_.set_context_bandwidth(shift_bandwidth_of(o));
    expression_centroids_.set_context_bandwidth(shift_bandwidth_of(o));
    const double stand_in_weight = o.number("stand_in_weight");
    if (stand_in_weight != -1 && !(stand_in_weight >= 0 && stand_in_weight <= 1)) {
      throw std::invalid_argument("stand_in_weight must be in [0, 1], or -1 to choose it by leaving trained targets out");
    }
    add_stand_ins(to_perturbations, to_columns, data,
                  gene_terms_of(o.texts("stand_in_genes"), o.texts("stand_in_terms")), stand_in_weight);
  }

  GeneratedCells out = GeneratedCells::sized(G, n);
  out.library_size_method = "observed";
  for (int i = 0; i < n; ++i) out.library_size[i] = data.library_sizes()[i];
  torch::NoGradGuard no_grad;
  // Each cell's shift from its own levels to its target's (B, dims), in the
  // space of `centroids`: codes or log expression.
  const auto shifts_of = [&](const CovariateCentroids& centroids, const std::vector<int>& cells) {
    std::vector<float> rows;
    rows.reserve(cells.size() * static_cast<size_t>(centroids.dims()));
    for (int c : cells) {
      const std::vector<float> delta =
          perturbation_shift(centroids, from_perturbations, to_perturbations,
                             codes_of_cell(from_columns, covariates_, c), codes_of_cell(to_columns, covariates_, c));
      rows.insert(rows.end(), delta.begin(), delta.end());
    }
    return at::tensor(rows, at::TensorOptions().dtype(at::kFloat))
        .view({static_cast<int64_t>(cells.size()), centroids.dims()})
        .to(device_);  // (B, dims)
  };
  // One batch of cells moved: their counts (B, G) after the move, drawn with
  // `generator` (the observed response runs this twice with the same draws).
  const auto moved_counts = [&](const CellBatch& observed, const std::vector<int>& cells, int lo,
                                at::Generator& generator) {
    // Encoded as the flow's training codes and the centroids were: without the condition.
    const Tensor code = vae_average_->encode(observed.expression, {}).mean;  // (B, d)
    Tensor z = code;                                                         // (B, d) moved below
    const Covariates target = covariates_of(to_columns, cells, device_);
    if (shift) {
      z = z + shifts_of(centroids_, cells);  // (B, d)
    } else if (has_latent_model()) {
      const Tensor moved = transfer_cells(network, *objective_, (z - z_mean_) / z_sd_,
                                          covariates_of(from_columns, cells, device_), target, settings,
                                          mode);  // (B, d)
      z = moved * z_sd_ + z_mean_;
    }
    if (!keep_noise) return draw_counts(z, target, lo, generator, out);
    // Each count at its own quantile: under the decoded law of the cell's
    // code and own condition, then under the moved code and new condition.
    const LikelihoodParams own = vae_average_->decode(code, covariates_of(from_columns, cells, device_));
    const LikelihoodParams moved = vae_average_->decode(z, target);
    return vae_average_->likelihood().carry(own, moved, observed.counts, observed.library_size, generator);
  };
  const uint64_t seed = static_cast<uint64_t>(o.integer("seed"));
  if (!observed_response) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    for (int lo = 0; lo < n; lo += batch_size) {
      const std::vector<int> cells = cell_range(lo, std::min<int>(n, lo + batch_size));
      store_counts(moved_counts(batch(data, cells, {}), cells, lo, generator), lo, out);
    }
    return out;
  }

  // The observed response. The cells making one move (from, to) change
  // their log1p-normalised expression, on average over them, as the training
  // cells' mean log expression changes between the contexts (the expression
  // shift s: the latent shift's rule on the centroids of mean log
  // expression); each cell departs from that as the model's moved counts
  // depart from their own mean change: log value max(P + s - mean(P - L), 0)
  // of a cell with log expression L before and P after the model's move (all
  // normalised by the cell's observed library size, as the centroids are),
  // made counts again by rounding in log space (decode/log_rounding.hpp).
  // With the observed change at weight w ("both": 0.5), max(P + w (s -
  // mean(P - L)), 0): the mean change lands between s and the model's own.
  // Two passes with the same draws: the first sums P - L per move. A cell
  // moved to its own levels comes back exactly: its carried counts are its
  // own (P = L), s = 0, and a count's own log value rounds to that count.
  // Cells without counts (library size 0) stay empty and out of the means.
  const auto log_values = [](const Tensor& counts, const Tensor& library) {  // (B, G), (B,) CPU double
    const Tensor scale = at::where(library > 0, kNormalisationTarget / library, at::zeros_like(library));  // (B,)
    return at::log1p(counts * scale.unsqueeze(1));                                                         // (B, G)
  };
  const auto on_cpu = [](const Tensor& t) { return t.to(at::kCPU).to(at::kDouble); };
  const auto move_of = [&](int c) {
    std::vector<int> key = codes_of_cell(from_columns, covariates_, c);
    const std::vector<int> to_codes = codes_of_cell(to_columns, covariates_, c);
    key.insert(key.end(), to_codes.begin(), to_codes.end());
    return key;
  };
  struct MoveSums {
    Tensor change;  // (G,) double: sum over its cells with counts of P - L, then their mean
    long cells = 0;
  };
  std::map<std::vector<int>, MoveSums> moves;
  {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    for (int lo = 0; lo < n; lo += batch_size) {
      const std::vector<int> cells = cell_range(lo, std::min<int>(n, lo + batch_size));
      const CellBatch observed = batch(data, cells, {});
      const Tensor library = on_cpu(observed.library_size);                                      // (B,)
      const Tensor change = log_values(on_cpu(moved_counts(observed, cells, lo, generator)), library) -
                            log_values(on_cpu(observed.counts), library);                       // (B, G)
      for (size_t i = 0; i < cells.size(); ++i) {
        const int64_t row = static_cast<int64_t>(i);
        if (!(library[row].item<double>() > 0)) continue;
        MoveSums& sums = moves[move_of(cells[i])];
        sums.change = sums.change.defined() ? sums.change + change[row] : change[row].clone();
        ++sums.cells;
      }
    }
    for (auto& move : moves) move.second.change /= static_cast<double>(move.second.cells);
  }
  at::Generator generator = at::detail::createCPUGenerator(seed);
  at::Generator rounding = at::detail::createCPUGenerator(seed + 1);
  const Tensor no_change = at::zeros({G}, at::TensorOptions().dtype(at::kDouble));
  for (int lo = 0; lo < n; lo += batch_size) {
    const std::vector<int> cells = cell_range(lo, std::min<int>(n, lo + batch_size));
    const CellBatch observed = batch(data, cells, {});
    const Tensor library = on_cpu(observed.library_size);                    // (B,)
    const Tensor counts = on_cpu(moved_counts(observed, cells, lo, generator));  // (B, G)
    std::vector<Tensor> mean_change;
    for (int c : cells) {
      const auto sums = moves.find(move_of(c));
      mean_change.push_back(sums == moves.end() ? no_change : sums->second.change);
    }
    // The move's mean change becomes w s + (1 - w) mean(P - L).
    const Tensor anchored =
        (log_values(counts, library) +
         observed_weight * (on_cpu(shifts_of(expression_centroids_, cells)) - at::stack(mean_change)))
            .clamp_min(0.0);  // (B, G)
    store_counts(round_in_log_space(anchored, library, rounding), lo, out);  // empty cells: 0
  }
  return out;
}

namespace {

// The levels of (target, level) candidates.
template <typename Target>
std::vector<int> levels_of(const std::vector<std::pair<Target, int>>& candidates) {
  std::vector<int> out;
  for (const auto& candidate : candidates) out.push_back(candidate.second);
  return out;
}

// Each candidate's stand-ins among the others, `choose(target, others)`,
// where the others' levels are their indices among `candidates` (as
// validated_stand_in_weight() reads them).
template <typename Target, typename Choose>
std::vector<std::vector<StandIn>> stand_ins_of_each(const std::vector<std::pair<Target, int>>& candidates,
                                                   Choose choose) {
  std::vector<std::vector<StandIn>> out;
  for (size_t j = 0; j < candidates.size(); ++j) {
    std::vector<std::pair<Target, int>> others;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (i != j) others.emplace_back(candidates[i].first, static_cast<int>(i));
    }
    out.push_back(choose(candidates[j].first, others));
  }
  return out;
}

}  // namespace

// Cells (spread over the data) whose co-expression gives the stand-ins: a
// bound for large data; correlations over 2,000 cells vary by about 0.02.
constexpr int kCoexpressionCells = 2000;
// Trained targets that stand in for an unseen one.
constexpr int64_t kStandIns = 3;

void LatentModel::add_stand_ins(std::vector<PerturbationLevels>& levels, const CovariateColumns& to,
                                const ExpressionSource& data, const GeneTerms& terms, double stand_in_weight) const {
  const bool by_terms = !terms.empty();
  std::unordered_map<std::string, int64_t> gene_index;
  for (size_t g = 0; g < genes_.size(); ++g) gene_index.emplace(genes_[g], static_cast<int64_t>(g));
  Tensor expression;  // (N, G) log-normalised, read once when a member needs it
  const auto read_expression = [&] {
    // Up to kCoexpressionCells cells spread over the data; expression only.
    const int n = data.n_cells(), take = std::min(n, kCoexpressionCells);
    std::vector<int> cells;
    for (int i = 0; i < take; ++i) cells.push_back(static_cast<int>(static_cast<int64_t>(i) * n / take));
    return make_cell_batch(data, cells, {}, identity_, /*with_counts=*/false, device_).expression.to(at::kCPU);
  };
  const CountVaeSettings vae = CountVaeSettings::from(spec_);
  const bool decoder_reads_condition = vae.decode_condition || vae.dispersion == "gene_condition";
  for (PerturbationLevels& p : levels) {
    // The trained single-target levels whose target the knowledge can
    // compare: a measured gene (co-expression), or a gene `terms` names.
    std::vector<std::pair<int64_t, int>> gene_candidates;
    std::vector<std::pair<std::string, int>> term_candidates;
    const int model_levels = static_cast<int>(covariates_[p.covariate].levels.size());
    for (int code = 0; code < model_levels; ++code) {
      if (p.members[code].size() != 1 || !centroids_.has_level(p.covariate, code)) continue;
      const std::string& target = p.members[code][0];
      if (by_terms) {
        if (terms.count(target)) term_candidates.emplace_back(target, code);
      } else if (const auto gene = gene_index.find(target); gene != gene_index.end()) {
        gene_candidates.emplace_back(gene->second, code);
      }
    }
    // The stand-ins' weight against the candidates' average: given, or
    // chosen on the candidates themselves once a member needs stand-ins.
    double weight = stand_in_weight;
    const auto blended = [&](const std::vector<StandIn>& stand_ins) {
      const std::vector<int> candidate_levels = by_terms ? levels_of(term_candidates) : levels_of(gene_candidates);
      if (weight < 0) {
        std::vector<int> control(covariates_.size(), -1);  // every other covariate averaged over its contexts
        control[p.covariate] = p.control;
        std::vector<std::vector<float>> shifts;  // each candidate's own shift from the control
        for (int level : candidate_levels) {
          std::vector<int> with_level = control;
          with_level[p.covariate] = level;
          shifts.push_back(centroids_.shift(control, with_level));
        }
        std::vector<std::vector<StandIn>> left_out;
        if (by_terms) {
          left_out = stand_ins_of_each(term_candidates, [&](const std::string& target, const auto& others) {
            return shared_term_stand_ins(terms, target, others, kStandIns);
          });
        } else {
          if (!expression.defined()) expression = read_expression();  // (N, G)
          left_out = stand_ins_of_each(gene_candidates, [&](int64_t target, const auto& others) {
            return coexpression_stand_ins(expression, target, others, kStandIns);
          });
        }
        weight = validated_stand_in_weight(shifts, left_out);
      }
      return blend_with_average(stand_ins, candidate_levels, weight);
    };
    // Only the levels the cells move to.
    const std::vector<int>& codes = to.at(covariates_[p.covariate].name);
    const std::set<int> wanted(codes.begin(), codes.end());
    for (size_t code = 0; code < p.names.size(); ++code) {
      if (!wanted.count(static_cast<int>(code))) continue;
      for (size_t j = 0; j < p.members[code].size(); ++j) {
        const int single = p.singles[code][j];
        const std::string& member = p.members[code][j];
        if ((single >= 0 && centroids_.has_level(p.covariate, single)) || p.stand_ins.count(member)) continue;
        // Neither a measured gene nor named by the terms: perturbation_shift() says what is missing.
        const auto gene = gene_index.find(member);
        if (gene == gene_index.end() && !terms.count(member)) continue;
        if (decoder_reads_condition) {
          throw std::invalid_argument("'" + member + "' has no training cells: its stand-ins move the latent code, "
                                      "but this model's decoder reads the condition (decode_condition / dispersion "
                                      "'gene_condition'), which has no value for it");
        }
        if (by_terms) {
          p.stand_ins[member] = blended(shared_term_stand_ins(terms, member, term_candidates, kStandIns));
          continue;
        }
        if (!expression.defined()) expression = read_expression();  // (N, G)
        p.stand_ins[member] = blended(coexpression_stand_ins(expression, gene->second, gene_candidates, kStandIns));
      }
    }
  }
}

// ------------------------------------------------------------- reconstruct ---
ReconstructedCells LatentModel::reconstruct(const ExpressionSource& data, const CellCovariates& conditions,
                                            const Options& options) {
  if (!vae_trained_) throw std::invalid_argument("the model has not been trained yet");
  check_model_genes(genes_, data);
  Options defaults = default_sample_options();
  defaults.set("noise_level", 0.5);  // accepted for a common interface; the VAE decodes posterior means
  // Draws for the marginal likelihood (0: not computed; each draw decodes
  // every cell once more, so it is asked for, not paid on every call).
  defaults.set("importance_samples", 0.0);
  const Options o = defaults.merged(options, /*known_only=*/true);
  const MatmulPrecisionGuard precision(matmul_precision_of(o));  // of the network's products
  const long batch_size = o.integer("batch_size");
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  const int n = data.n_cells(), G = static_cast<int>(genes_.size());
  const CovariateColumns columns = columns_of(conditions, n);

  const int64_t importance_samples = o.integer("importance_samples");
  if (importance_samples < 0) throw std::invalid_argument("importance_samples must be 0 (none) or more");
  ReconstructedCells out = ReconstructedCells::sized(G, n);
  if (importance_samples > 0) out.marginal_log_likelihood.resize(n);
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(o.integer("seed")));
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min<int>(n, lo + batch_size);
    CellBatch b = batch(data, cell_range(lo, hi), columns);
    const Posterior q = vae_average_->encode(b.expression, b.covariates);
    if (importance_samples > 0) {
      Tensor marginal = vae_average_->marginal_log_likelihood(q, b.counts, b.library_size, b.covariates,
                                                              importance_samples, generator)
                            .to(at::kCPU).contiguous();  // (B,)
      std::memcpy(out.marginal_log_likelihood.data() + lo, marginal.data_ptr<double>(),
                  sizeof(double) * marginal.numel());
    }
    const LikelihoodParams params = vae_average_->decode(q.mean, b.covariates);
    Tensor mean = vae_average_->likelihood().mean(params, b.library_size).to(at::kCPU).to(at::kDouble).contiguous();  // (B, G)
    Tensor log_rate = at::log1p(params.rate * kNormalisationTarget).to(at::kCPU).contiguous();                        // (B, G)
    Tensor ll = vae_average_->likelihood().log_prob(params, b.counts, b.library_size).sum(1).to(at::kCPU)
                    .to(at::kDouble).contiguous();                                                                      // (B,)
    std::memcpy(out.expected_counts.data() + static_cast<size_t>(lo) * G, mean.data_ptr<double>(),
                sizeof(double) * mean.numel());
    std::memcpy(out.logcounts.data() + static_cast<size_t>(lo) * G, log_rate.data_ptr<float>(),
                sizeof(float) * log_rate.numel());
    std::memcpy(out.log_likelihood.data() + lo, ll.data_ptr<double>(), sizeof(double) * ll.numel());
  }
  return out;
}

// ------------------------------------------------------------------ decode ---
std::vector<float> LatentModel::decode(const std::vector<float>& codes, int dims, const CellCovariates& conditions,
                                       const Options& options) {
  if (!vae_trained_) throw std::invalid_argument("the model has not been trained yet");
  const int64_t d = vae_average_->settings().latent_dim;
  if (dims != d || codes.size() % static_cast<size_t>(d) != 0) {
    throw std::invalid_argument("the latent codes have " + std::to_string(dims) + " dimensions; the model's have " +
                                std::to_string(d));
  }
  Options defaults;
  defaults.set("batch_size", 512.0);
  const long batch_size = defaults.merged(options, /*known_only=*/true).integer("batch_size");
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  const int n = static_cast<int>(codes.size() / d), G = static_cast<int>(genes_.size());
  const CovariateColumns columns = columns_of(conditions, n);
  std::vector<float> out(static_cast<size_t>(n) * G);
  torch::NoGradGuard no_grad;
  for (int lo = 0; lo < n; lo += batch_size) {
    const int hi = std::min<int>(n, lo + batch_size);
    const Tensor z = torch::from_blob(const_cast<float*>(codes.data()) + static_cast<size_t>(lo) * d, {hi - lo, d},
                                      torch::kFloat32).to(device_);  // (B, d)
    const LikelihoodParams params = vae_average_->decode(z, covariates_of(columns, cell_range(lo, hi), device_));
    Tensor log_rate = at::log1p(params.rate * kNormalisationTarget).to(at::kCPU).contiguous();  // (B, G)
    std::memcpy(out.data() + static_cast<size_t>(lo) * G, log_rate.data_ptr<float>(), sizeof(float) * log_rate.numel());
  }
  return out;
}

// ------------------------------------------------------------------- embed ---
std::vector<float> LatentModel::embed(const ExpressionSource& data, int* dims) {
  if (!vae_trained_) throw std::invalid_argument("the model has not been trained yet");
  check_model_genes(genes_, data);
  Tensor codes = latent_codes(data).to(at::kCPU).contiguous();  // (N, d)
  *dims = static_cast<int>(codes.size(1));
  return std::vector<float>(codes.data_ptr<float>(), codes.data_ptr<float>() + codes.numel());
}

namespace {

void check_encoder_tokens(const CountVaeImpl& vae, const std::string& architecture) {
  if (!vae.has_encoder_tokens()) {
    throw std::invalid_argument("architecture '" + architecture +
                                "' has no gene-derived tokens (its tokens, if any, are chunks of a VAE latent code; "
                                "'latent_pathway', or vae_encoder = 'set_tokens', gives the encoder tokens)");
  }
}

}  // namespace

std::vector<std::string> LatentModel::token_names() const { return vae_average_->token_names(); }

// Token encoders: per cell, the norm of each token's posterior mean (its k values).
std::vector<float> LatentModel::token_activations(const ExpressionSource& data, int* n_tokens) {
  check_encoder_tokens(*vae_average_, spec_.text("architecture"));
  if (!vae_trained_) throw std::invalid_argument("the model has not been trained yet");
  check_model_genes(genes_, data);
  torch::NoGradGuard no_grad;
  std::vector<Tensor> parts;
  const int n = data.n_cells(), batch_size = 512;
  for (int lo = 0; lo < n; lo += batch_size) {
    const Tensor x = batch(data, cell_range(lo, std::min(n, lo + batch_size)), {}).expression;  // (B, G)
    parts.push_back(vae_average_->token_means(x).norm(2, {2}));                                // (B, T)
  }
  Tensor all = at::cat(parts).to(at::kCPU).contiguous();  // (N, T)
  *n_tokens = static_cast<int>(all.size(1));
  return std::vector<float>(all.data_ptr<float>(), all.data_ptr<float>() + all.numel());
}

// "weights": the norm of each token's projection weights per member gene;
// "gradient": d |token mean| / d x_g, averaged over the cells.
std::vector<float> LatentModel::token_gene_loadings(const std::string& method, const ExpressionSource* data,
                                                    int* n_tokens) {
  check_encoder_tokens(*vae_average_, spec_.text("architecture"));
  return token_loadings_by_method(
      method, data, [this](const ExpressionSource& d) { check_model_genes(genes_, d); },
      [this] { return vae_average_->token_weight_loadings(); },
      [&](int lo, int hi) { return batch(*data, cell_range(lo, hi), {}).expression; },
      [this](const Tensor& x) { return vae_average_->token_means(x).norm(2, {2}); },  // (B, T)
      n_tokens);
}

// --------------------------------------------------------------- save/load ---
std::string LatentModel::to_bytes() const {
  TensorBundle bundle;
  bundle.meta = generative_model_meta(*this);
  bundle.meta["vae_trained"] = vae_trained_;
  bundle.meta["latent_trained"] = latent_trained_;
  bundle.put_module("vae", *vae_);
  bundle.put_module("vae_average", *vae_average_);
  if (has_latent_model()) {
    bundle.put_module("network", *network_);
    bundle.put_module("ema", *ema_);
  }
  bundle.put("latent_mean", z_mean_);
  bundle.put("latent_sd", z_sd_);
  if (z_low_.defined()) {
    bundle.put("clip_low", z_low_);
    bundle.put("clip_high", z_high_);
  }
  write_library_sizes(bundle, library_sizes_);
  write_adapter(bundle, adapter_);
  write_centroids(bundle, centroids_);
  write_centroids(bundle, expression_centroids_, "expression_centroid");
  write_resources(bundle, resources_);
  return model_file_bytes(bundle);
}

std::unique_ptr<LatentModel> LatentModel::read_model(const TensorBundle& bundle) {
  const Json& meta = bundle.meta;
  Options spec = loaded_spec(meta);
  // Files from before the encoder's input was a setting read log expression.
  if (!spec.has("vae_input")) spec.set("vae_input", "log");
  auto model = std::make_unique<LatentModel>(spec, meta.at("genes").get<std::vector<std::string>>(),
                                             read_covariates(meta),
                                             read_resources(bundle));
  bundle.get_module("vae", *model->vae_);
  bundle.get_module("vae_average", *model->vae_average_);
  if (model->has_latent_model()) {
    bundle.get_module("network", *model->network_);
    bundle.get_module("ema", *model->ema_);
  }
  // The latent statistics have the shape the constructor gave them.
  const std::vector<int64_t> latent_shape = model->z_mean_.sizes().vec();
  model->z_mean_ = bundle.get("latent_mean", latent_shape, at::kFloat).clone();
  model->z_sd_ = bundle.get("latent_sd", latent_shape, at::kFloat).clone();
  model->vae_trained_ = meta.at("vae_trained").get<bool>();
  model->latent_trained_ = meta.at("latent_trained").get<bool>();
  if (model->latent_trained_) {
    model->z_low_ = bundle.get("clip_low", latent_shape, at::kFloat).clone();
    model->z_high_ = bundle.get("clip_high", latent_shape, at::kFloat).clone();
    model->objective_->set_x0_bounds(model->z_low_, model->z_high_);
  }
  read_library_sizes(bundle, model->library_sizes_);
  model->adapter_ = read_adapter(bundle);
  read_centroids(bundle, model->centroids_);
  read_centroids(bundle, model->expression_centroids_, "expression_centroid");  // absent in files before them
  model->restore_record(meta);
  return model;
}

}  // namespace exprflow

namespace exprflow {

std::string LatentModel::adapter_bytes() const { return adapter_file_bytes(adapter_); }

void LatentModel::apply_adapter(std::string_view bytes, const std::string& source) {
  if (!has_latent_model()) throw std::invalid_argument("a LoRA adapter adapts a latent model's flow; the 'vae' has none");
  adapter_ = apply_adapter_and_box(bytes, source, *network_, *ema_, z_low_, z_high_, history_);
  objective_->set_x0_bounds(z_low_, z_high_);
  annotations() = annotations().merged(adapter_annotations(adapter_), /*known_only=*/false);
}

}  // namespace exprflow
