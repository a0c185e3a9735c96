// The torch-free face of the exprflow core.
//
// Everything a front end (the R glue, a command-line tool, a benchmark) needs
// to train, sample, embed, save and load a model, without including any
// LibTorch header: the glue compiles in a second, and a change inside a model
// never recompiles it. The implementation lives in src/core/api/.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exprflow/options.hpp"

namespace exprflow {

class ExpressionSource;  // data/expression_source.hpp

// ---------------------------------------------------------------- runtime ---
struct RuntimeInfo {
  std::string torch_version;     // e.g. "1.13.0"
  bool cuda_compiled = false;    // this core was built with CUDA kernels
  bool cuda_available = false;   // LibTorch sees a usable CUDA device
  int cuda_device_count = 0;
  int torch_threads = 1;         // intra-op (OpenMP) threads LibTorch uses
  std::string blas;              // "OpenBLAS", "reference BLAS", "MKL", ...
  std::string blas_library;      // the shared object it was found in
  bool blas_is_reference = false;
  std::string blas_core;         // OpenBLAS: the kernels it runs (openblas_get_corename), else ""
  int blas_threads = 0;          // OpenBLAS: its thread count (0: unknown)
  std::string cpu_extensions;    // e.g. "avx avx2 avx512f avx512bw" (runtime/runtime_info.hpp)
  std::string blas_core_advice;  // OPENBLAS_CORETYPE that would use the CPU fully, "" when fine
  std::string parallel_info;     // LibTorch's own description of its pools
};
RuntimeInfo runtime_info();
void set_torch_threads(int n);
// Sets OpenBLAS's thread count at run time (openblas_set_num_threads), for a
// worker process whose launcher did not set OPENBLAS_NUM_THREADS; false when
// the BLAS is not OpenBLAS (others keep their setting).
bool set_blas_threads(int n);

// ------------------------------------------------------------------ train ---
// One validation-loss reading per epoch; the glue turns it into a data.frame.
struct EpochRecord {
  // Which part of the model trained: "model" for one-stage models; latent
  // models train "vae" and then "latent". Epochs count from 1 per stage.
  std::string stage = "model";
  int epoch = 0;
  double train_loss = 0.0;
  double validation_loss = 0.0;  // NaN when there is no validation split
  double learning_rate = 0.0;
  double seconds = 0.0;
};

struct TrainCallbacks {
  // Called after every optimiser step on the calling thread (never from a
  // worker); return false to stop training cleanly (user interrupt).
  std::function<bool(long step, long total_steps, double loss)> on_step;
  // Called after every epoch with its record.
  std::function<void(const EpochRecord&)> on_epoch;
  // Called when a stage starts (EpochRecord::stage), before its first step:
  // step counts and totals of on_step restart per stage.
  std::function<void(const std::string& stage)> on_stage;
};

// Whether this build can train across processes (the train options
// group_*: Gloo's headers were found when the core was built).
bool data_parallel_available();

// Where a checkpointed run stood (train option "checkpoint").
struct CheckpointInfo {
  std::string stage;  // the stage that was training (EpochRecord::stage)
  long epoch = 0;     // epochs of that stage completed
  long batch = 0;     // minibatches of the next epoch done (an interrupted epoch)
  long steps = 0;     // optimiser steps of that stage taken
  long epochs = 0;    // the stage's epochs in all
};

struct TrainReport {
  std::vector<EpochRecord> history;
  bool interrupted = false;
  bool stopped_early = false;
  int best_epoch = 0;
  long steps = 0;
};

// ----------------------------------------------------------------- sample ---
struct GeneratedCells {
  // Gene-space models: their sample (log-normalised expression) and counts
  // from inverting the normalisation. Latent models: counts drawn from the
  // decoder's likelihood, and their log-normalisation.
  int n_genes = 0;
  int n_cells = 0;
  std::vector<float> logcounts;      // genes x cells, column-major
  std::vector<int32_t> counts;       // genes x cells, column-major
  std::vector<double> library_size;  // per generated cell: the library size drawn for it
  // How the sizes were chosen: a library_size method ("empirical",
  // "lognormal", "matched"), "default" resolved; "observed" for transfers.
  std::string library_size_method;
  // Whether gene-space samples' gene shares were calibrated: "mean" or
  // "none" (decode/gene_share_calibration.hpp); "none" for latent models.
  std::string gene_calibration = "none";

  // Every vector sized for n_cells cells of n_genes genes.
  static GeneratedCells sized(int n_genes, int n_cells);
};

// ------------------------------------------------------------ reconstruct ---
// Gene-space models: observed cells noised to a fraction of the diffusion and
// denoised back. Latent models: decoded from their posterior means.
struct ReconstructedCells {
  int n_genes = 0;
  int n_cells = 0;
  std::vector<float> logcounts;        // genes x cells, column-major, log1p-normalised
  std::vector<double> expected_counts; // genes x cells: the NB means given each cell's library size
  std::vector<double> log_likelihood;  // per cell: log-likelihood (nats) of its observed counts (NB; latent models: their likelihood)
  // Latent models only (empty otherwise), per cell: the marginal log-likelihood
  // log p(counts | library size) over the VAE's prior, importance-sampled
  // (option importance_samples); log_likelihood above is at the code the
  // encoder reads off the cell itself.
  std::vector<double> marginal_log_likelihood;

  static ReconstructedCells sized(int n_genes, int n_cells);
};

// -------------------------------------------------------------- resources ---
// Structured inputs a composition is built from (gene sets, regulatory
// edges, gene embeddings): named dense arrays with optional row and column
// names. They travel with the spec into the stage factories and are stored in
// the model file, so a loaded model is rebuilt from exactly what it was
// trained with.
struct NamedTensor {
  std::vector<int64_t> shape;             // e.g. {sets, genes}
  std::vector<float> values;              // row-major, prod(shape) values
  std::vector<std::string> row_names;     // empty, or shape[0] names
  std::vector<std::string> column_names;  // empty, or shape[1] names
};
using Resources = std::map<std::string, NamedTensor>;
// Throws std::invalid_argument naming the resource when its sizes disagree.
void check_resources(const Resources& resources);

// ------------------------------------------------------------- covariates ---
// A categorical covariate a model conditions on: its name (e.g. a colData
// column, "cell_type") and its levels. Each gets its own embedding; the
// condition is their sum, so a combination of levels never seen together in
// training can still be asked for.
//
// A perturbation covariate (`perturbation_set`) has combinations for levels,
// written with their members joined by '+' ("JAK2", "JAK2+STAT1"), and one
// `control` level with no member (e.g. "non-targeting"). Each member gets an
// embedding and a level is the sum of its members' (plus a learned control
// vector), so that a combination never seen in training can be asked for as
// an extra level (CellCovariates::extra_levels). `dosed`: each member's
// embedding is scaled by a learned monotone dose response, a Hill curve
// d^h / (d^h + k^h) per member of the dose d / dose_scale (dose 0: no
// effect), with the doses of CellCovariates::doses.
struct Covariate {
  std::string name;
  std::vector<std::string> levels;
  bool perturbation_set = false;
  std::string control;
  bool dosed = false;
  double dose_scale = 1.0;
};

// The members of a perturbation level ("A+B" -> {"A", "B"}; the control
// level -> none).
std::vector<std::string> perturbation_members(const Covariate& covariate, const std::string& level);

// The covariates' names for messages: "'a', 'b'", or "none".
inline std::string covariate_names(const std::vector<Covariate>& covariates) {
  std::string names;
  for (const Covariate& c : covariates) names += (names.empty() ? "'" : ", '") + c.name + "'";
  return names.empty() ? "none" : names;
}

// Covariate name -> one 0-based level per cell (-1: unknown, i.e. the
// covariate's null embedding, what classifier-free guidance trains).
using CovariateCodes = std::map<std::string, std::vector<int>>;

// The covariates of the cells a model is handed (to train on, generate,
// reconstruct, transfer): either `by_name`, for any model (a covariate the map
// lacks is -1 for every cell), or `condition`, the codes of a model's only
// covariate (and all -1 for an unconditional one) - the form callers written
// for one condition use, converted implicitly from a std::vector<int>.
//
// Perturbation covariates also take `extra_levels`: combinations of known
// members the model has no level for (code n_levels + i is extra level i),
// and, where dosed, `doses`: per cell the dose of each member of its level,
// in the order the level names them (row-major, n_cells x width, zero
// padded; missing: dose 1 for every member).
struct CellDoses {
  int width = 0;
  std::vector<float> values;
};
struct CellCovariates {
  std::vector<int> condition;
  CovariateCodes by_name;
  std::map<std::string, std::vector<std::string>> extra_levels;
  std::map<std::string, CellDoses> doses;

  CellCovariates() = default;
  CellCovariates(std::vector<int> codes) : condition(std::move(codes)) {}  // NOLINT: implicit by design
  CellCovariates(CovariateCodes codes) : by_name(std::move(codes)) {}      // NOLINT: implicit by design
  CellCovariates(std::initializer_list<int> codes) : condition(codes) {}
  // Cells described: the length of `condition` or of the columns of `by_name`
  // (which must agree; checked by the model).
  size_t n_cells() const { return by_name.empty() ? condition.size() : by_name.begin()->second.size(); }
};

// ------------------------------------------------------------------ model ---
// One row of the composition table (see models/compositions.hpp).
struct ArchitectureInfo {
  std::string name, tokenizer, backbone, decoder;
  std::string space;      // "gene": the flow / diffusion runs on standardised expression
  std::string objective;  // the default objective
  std::string description;
  std::vector<std::string> resources;  // what create() must be given, e.g. "gene_sets"
};

// A trained (or untrained) generative model with everything needed to use it
// on new data: composition, gene names, condition levels, per-gene
// dispersions, library sizes of the training cells and the EMA weights.
// Implemented by ExpressionModel (api/expression_model.hpp).
class GenerativeModel {
 public:
  virtual ~GenerativeModel() = default;

  // Names the composition table knows, e.g. "latent_tokens", "state_mlp".
  static std::vector<std::string> architectures();
  static std::vector<ArchitectureInfo> architecture_table();
  // Defaults of one architecture (model settings only) with `objective`
  // ("flow", "ddpm"; empty: the architecture's default).
  static Options default_spec(const std::string& architecture, const std::string& objective = "");
  // Training options of an architecture (empty: the gene-space defaults).
  // Latent models add vae_epochs, vae_batch_size, vae_learning_rate,
  // vae_ema_decay, vae_patience (their VAE stage), kl_warmup (fraction of the
  // VAE's steps over which the KL weight rises from 0) and kl_weight.
  static Options default_train_options(const std::string& architecture = "");
  static Options default_sample_options();

  // `spec` holds "architecture" plus overrides of its defaults. Condition
  // levels may be empty (unconditional model); otherwise they are the levels
  // of one covariate named "condition".
  static std::unique_ptr<GenerativeModel> create(const Options& spec,
                                                 std::vector<std::string> genes,
                                                 std::vector<std::string> condition_levels,
                                                 Resources resources = {});
  // A model of several categorical covariates (names unique and non-empty,
  // each with at least one level); none: an unconditional model.
  static std::unique_ptr<GenerativeModel> create_with_covariates(const Options& spec,
                                                                 std::vector<std::string> genes,
                                                                 std::vector<Covariate> covariates,
                                                                 Resources resources = {});
  // Files saved by exprflow before its own tensor format hold a LibTorch
  // archive, whose reader a crafted file can crash: they are read only with
  // `trust_legacy`, else refused with an error that says so.
  static std::unique_ptr<GenerativeModel> load(const std::string& path, bool trust_legacy = false);
  // A model from the bytes of a model file (to_bytes()); `source` names them
  // in errors.
  static std::unique_ptr<GenerativeModel> load_bytes(std::string_view bytes,
                                                     const std::string& source = "model bytes",
                                                     bool trust_legacy = false);
  // The model a checkpoint file holds, as it was when the checkpoint was
  // written; train() with the train option resume = that path continues the run.
  static std::unique_ptr<GenerativeModel> load_checkpoint(const std::string& path);
  static CheckpointInfo checkpoint_info(const std::string& path);

  // `conditions` holds the covariates of each cell of `data` (see
  // CellCovariates). The validation split is stratified by the combination
  // of levels. Training options: see default_train_options().
  virtual TrainReport train(const ExpressionSource& data, const CellCovariates& conditions,
                            const Options& train_options, const TrainCallbacks& callbacks) = 0;

  // One cell per entry of `conditions` (-1: that covariate unconditional).
  // Sample option guidance_scale: a number guides all covariates together
  // (classifier-free guidance against the all-null condition); nested options
  // {covariate: scale} guide each covariate by its own scale (compositional
  // guidance, see sample/guidance.hpp; covariates not named get 1). Counts
  // use a library size drawn from training cells of the same combination of
  // levels (falling back to fewer covariates, the last one first, where the
  // combination has no training cells).
  virtual GeneratedCells generate(const CellCovariates& conditions,
                                  const Options& sample_options) = 0;

  // Pooled encoder tokens of clean input: cells x dims, row-major.
  virtual std::vector<float> embed(const ExpressionSource& data, int* dims) = 0;

  // Latent models: the decoder's expression at latent codes (n x dims,
  // row-major, as embed() gives them; n = codes.size() / dims) under
  // `conditions` (one per code, as for train()), log-normalised as
  // reconstruct() gives it (log1p of the decoded rate x the normalisation
  // target): genes x n, column-major. What a cell moved in the latent space
  // (e.g. by a dynamics model) looks like in genes. Options: batch_size.
  // Gene-space models have no latent code: std::invalid_argument.
  virtual std::vector<float> decode(const std::vector<float>& codes, int dims, const CellCovariates& conditions,
                                    const Options& options) = 0;

  // Noises each cell to `noise_level` (a fraction of the diffusion, 0-1) and
  // denoises it back with the sampler; conditions as for train(). Options:
  // noise_level, steps, seed, batch_size, guidance_scale.
  virtual ReconstructedCells reconstruct(const ExpressionSource& data, const CellCovariates& conditions,
                                         const Options& options) = 0;

  // Counterfactual cells: each cell of `data` keeps what the model does not
  // explain by its condition and is moved from level `from` to level `to`
  // (one per cell each, as for train()). Gene-space models invert the cell to
  // noise under `from` with a deterministic sampler and generate from that
  // noise under `to`; latent models do the same with the cell's latent code
  // and decode it under `to` (the "vae" alone decodes its code under `to`).
  // Counts keep each cell's observed library size. Options: steps, method
  // (deterministic: "default" = the objective's own, "euler", "heun", or
  // "ddim" with eta 0), guidance_scale (both ways), seed (count draws),
  // batch_size, transfer ("joint": all covariates both ways; "marginal": only
  // the covariates that change, the others null; "contrast": the cell's own
  // flow plus the changed covariates' marginal contrast; see
  // sample/samplers.hpp transfer_cells).
  virtual GeneratedCells transfer(const ExpressionSource& data, const CellCovariates& from,
                                  const CellCovariates& to, const Options& options) = 0;

  // Token models: per cell, the L2 norm of each encoder token (content, no
  // position): cells x tokens, row-major. Throws for models without tokens.
  virtual std::vector<float> token_activations(const ExpressionSource& data, int* n_tokens) = 0;

  // Token models: tokens x genes, row-major. method "weights": the norm, over
  // a token's dimensions, of the encoder's linear path (W_out W_in), unsigned;
  // "gradient": the mean over the cells of `data` of d(token norm)/d(gene),
  // signed, in standardised gene units (needs data).
  virtual std::vector<float> token_gene_loadings(const std::string& method, const ExpressionSource* data,
                                                 int* n_tokens) = 0;

  // The model file's bytes: everything load_bytes() needs, in a checksummed
  // envelope with the format version (front ends keep them in memory, as the
  // R package does in each model object).
  virtual std::string to_bytes() const = 0;
  // LoRA: train() with lora_rank > 0 fine-tunes a trained model through
  // low-rank adapters of its denoising network's backbone and merges them.
  // adapter_bytes() is the last such run's adapter alone, as a file's bytes
  // (std::invalid_argument when there was none); apply_adapter() merges one
  // into this model, which must be the one it was fine-tuned from, as it
  // was then (`source` names the bytes in errors).
  virtual std::string adapter_bytes() const = 0;
  virtual void apply_adapter(std::string_view bytes, const std::string& source) = 0;
  // A copy of this model whose covariates have more levels: `covariates` are
  // the model's, in its order, each with the model's levels first (in their
  // order) and new ones after. A new level's embedding rows start as the
  // covariate's null (unconditional) row, a new perturbation member's at
  // zero; fine-tuning (train() with lora_rank, which also updates the
  // condition tables) learns them. Otherwise std::invalid_argument naming
  // the covariate. The copy holds no adapter of an earlier fine-tuning.
  std::unique_ptr<GenerativeModel> with_levels(const std::vector<Covariate>& covariates) const;
  // to_bytes() written to `path` atomically (a temporary file renamed over it).
  void save(const std::string& path) const;

  // Free-form settings a front end keeps with the model and its file (the R
  // package stores the condition column name and level frequencies here).
  virtual Options& annotations() = 0;

  virtual const Options& spec() const = 0;
  virtual const Resources& resources() const = 0;
  // Names of the model's tokens where they stand for something named (one
  // per gene set, and the residual token); empty otherwise.
  virtual std::vector<std::string> token_names() const { return {}; }
  virtual const std::vector<std::string>& genes() const = 0;
  // The covariates in the model's order (empty: unconditional).
  virtual const std::vector<Covariate>& covariates() const = 0;
  // The levels of a one-covariate model's covariate (empty for an
  // unconditional model); throws for a model of several covariates.
  const std::vector<std::string>& condition_levels() const;
  virtual const std::vector<EpochRecord>& history() const = 0;
  virtual long parameter_count() const = 0;
  virtual bool trained() const = 0;
  virtual std::string device() const = 0;
  // The sampler generate() and reconstruct() use for method "default".
  virtual std::string default_sampler() const = 0;
};

}  // namespace exprflow
