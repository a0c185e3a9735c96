// The static face of GenerativeModel: the architecture table, defaults,
// and the factory and loader that pick the implementation an architecture's
// space names (ExpressionModel for "gene", LatentModel for "latent").

#include <algorithm>
#include <stdexcept>

#include "api/expression_model.hpp"
#include "api/latent_model.hpp"
#include "api/model_file.hpp"
#include "api/model_inputs.hpp"
#include "io/model_archive.hpp"
#include "io/model_envelope.hpp"
#include "models/compositions.hpp"
#include "train/checkpoint.hpp"

namespace exprflow {

std::unique_ptr<GenerativeModel> GenerativeModel::create(const Options& spec, std::vector<std::string> genes,
                                                         std::vector<std::string> levels, Resources resources) {
  std::vector<Covariate> covariates;
  if (!levels.empty()) covariates.push_back({kConditionCovariate, std::move(levels)});
  return create_with_covariates(spec, std::move(genes), std::move(covariates), std::move(resources));
}

std::unique_ptr<GenerativeModel> GenerativeModel::create_with_covariates(const Options& spec,
                                                                         std::vector<std::string> genes,
                                                                         std::vector<Covariate> covariates,
                                                                         Resources resources) {
  if (composition(spec.text("architecture", "latent_tokens")).space == "latent") {
    return std::make_unique<LatentModel>(spec, std::move(genes), std::move(covariates), std::move(resources));
  }
  return std::make_unique<ExpressionModel>(spec, std::move(genes), std::move(covariates), std::move(resources));
}

const std::vector<std::string>& GenerativeModel::condition_levels() const {
  static const std::vector<std::string> none;
  const std::vector<Covariate>& c = covariates();
  if (c.empty()) return none;
  if (c.size() > 1) {
    throw std::invalid_argument("the model has " + std::to_string(c.size()) +
                                " covariates: ask for its covariates(), not one condition's levels");
  }
  return c.front().levels;
}

std::vector<std::string> GenerativeModel::architectures() { return composition_names(); }

std::vector<ArchitectureInfo> GenerativeModel::architecture_table() {
  std::vector<ArchitectureInfo> rows;
  for (const std::string& name : composition_names()) {
    const Composition& c = composition(name);
    rows.push_back({c.name, c.tokenizer, c.backbone, c.decoder, c.space, c.objective, c.description, c.resources});
  }
  return rows;
}

Options GenerativeModel::default_spec(const std::string& architecture, const std::string& objective) {
  return composition_defaults(architecture, objective);
}

Options GenerativeModel::default_train_options(const std::string& architecture) {
  // lora_rank > 0 fine-tunes a trained model's denoising network with LoRA
  // adapters of that rank (api/lora_adapter.hpp); lora_alpha 0 means the rank.
  return composition_train_options(architecture.empty() ? "latent_tokens" : architecture)
      .set("lora_rank", 0.0)
      .set("lora_alpha", 0.0)
      .set("lora_layers", "all")
      // Checkpoints (train/checkpoint.hpp): a file to write them to, epochs
      // between them, and a checkpoint to resume a run from ("" none).
      .set("checkpoint", "")
      .set("checkpoint_every", 1.0)
      .set("resume", "")
      // Training across processes (train/data_parallel.hpp): this process's
      // rank, the number of processes, where they meet ("file:<path>" or
      // "tcp:<host>:<port>"; "" alone) and how long a collective may wait.
      .set("group_store", "")
      .set("group_rank", 0.0)
      .set("group_size", 1.0)
      .set("group_timeout", 300.0);
}

Options GenerativeModel::default_sample_options() {
  Options o;
  // method "default": the objective's own (DDIM for DDPM, Euler for flow).
  o.set("method", "default").set("steps", 50.0).set("eta", 0.0).set("guidance_scale", 1.0)
      .set("batch_size", 256.0).set("seed", 1.0).set("clip", 1.0)
      .set("precision", "float32")  // of the network's matrix products: runtime/matmul_precision.hpp
      // data/library_sizes.hpp; "default": "matched" for gene-space models
      // (from models saved with their training cells' detected genes), else
      // "empirical".
      .set("library_size", "default")
      // Gene-space models: the samples' mean gene shares corrected to the
      // training cells' per combination of levels
      // (decode/gene_share_calibration.hpp): "mean", "none", or "default"
      // ("mean" where the model has the factors). Latent models: "none".
      .set("gene_calibration", "default")
      // generate() of latent flows: a combination of levels no training
      // cell had is sampled at a seen one (one covariate changed) plus the
      // latent shift between them ("shift"; "default" too), or asked of the
      // flow directly ("joint"; gene-space models: always).
      .set("unseen", "default")
      .set("transfer", "joint")          // transfer() only: sample/samplers.hpp transfer_cells
      // transfer() of latent models: "drawn" counts are new draws from the
      // moved cell's decoded law; "cell" carries each observed count to its
      // quantile under that law (decode/count_quantiles.hpp), keeping the
      // cell's own noise. "default": "cell" for latent models, "drawn" (the
      // only one) for gene-space models.
      .set("transfer_noise", "default")
      // transfer "shift" of latent models: the response per gene the
      // decoder gives ("model"), or the training cells' observed one with
      // each cell's departure from it as the model gives it ("observed"),
      // or halfway between the two ("both"; R's default). Also generate()'s
      // unseen combinations sampled by "shift": "model" draws them at the
      // shifted codes, the others generate them at the seen combination and
      // move them as transfer() moves observed cells.
      .set("transfer_response", "model")
      // transfer "shift" only: (gene, term) pairs whose shared terms choose
      // stand-ins for unseen targets (data/coexpression_stand_ins.hpp);
      // none: co-expression.
      .set("stand_in_genes", std::vector<std::string>{})
      .set("stand_in_terms", std::vector<std::string>{})
      // transfer "shift" only: the stand-ins' weight in their blend with the
      // average of the trained targets that could stand in (1: the stand-ins
      // alone; -1: chosen by leaving each trained target out in turn).
      .set("stand_in_weight", 1.0)
      // The latent shift ("shift" transfers, "shift" generation of unseen
      // combinations) from other contexts' responses: the width of the
      // kernel that weighs them by how alike their starting state is to the
      // cell's own (data/covariate_centroids.hpp); -1: infinity, all alike.
      // 0.25 by measurement: Kang 2018, each of six cell types' stimulated
      // cells held out in turn (inst/scripts/perturbation_kang.R), a vae's
      // top-100-DEG squared Pearson 0.846 against 0.821 with all alike
      // (0.5: 0.832; 0.125 and 0.0625 as 0.25); latent_mlp likewise.
      .set("shift_bandwidth", 0.25);
  return o;
}

GeneratedCells GeneratedCells::sized(int n_genes, int n_cells) {
  GeneratedCells out;
  out.n_genes = n_genes;
  out.n_cells = n_cells;
  out.logcounts.resize(static_cast<size_t>(n_genes) * n_cells);
  out.counts.resize(static_cast<size_t>(n_genes) * n_cells);
  out.library_size.resize(n_cells);
  return out;
}

ReconstructedCells ReconstructedCells::sized(int n_genes, int n_cells) {
  ReconstructedCells out;
  out.n_genes = n_genes;
  out.n_cells = n_cells;
  out.logcounts.resize(static_cast<size_t>(n_genes) * n_cells);
  out.expected_counts.resize(static_cast<size_t>(n_genes) * n_cells);
  out.log_likelihood.resize(n_cells);
  return out;
}

std::unique_ptr<GenerativeModel> GenerativeModel::load(const std::string& path, bool trust_legacy) {
  return load_bytes(read_file_bytes(path, "model"), path, trust_legacy);
}

std::unique_ptr<GenerativeModel> GenerativeModel::load_checkpoint(const std::string& path) {
  return load_bytes(read_checkpoint(path).model_bytes, path);
}

CheckpointInfo GenerativeModel::checkpoint_info(const std::string& path) {
  const Checkpoint c = read_checkpoint(path);
  CheckpointInfo info;
  info.stage = c.stage;
  info.epoch = c.state.epoch - 1;
  info.batch = c.state.batch;
  info.steps = c.state.report.steps;
  info.epochs = c.state.settings.at("epochs").get<long>();
  return info;
}

std::unique_ptr<GenerativeModel> GenerativeModel::load_bytes(std::string_view bytes, const std::string& source,
                                                             bool trust_legacy) {
  const TensorBundle bundle = open_generative_model_bytes(bytes, source, trust_legacy);
  try {
    const Options spec = Options::from_json(bundle.meta.at("spec").dump());
    if (composition(spec.text("architecture")).space == "latent") return LatentModel::read_model(bundle);
    return ExpressionModel::read_model(bundle);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read model file '" + source + "': the file is incomplete or corrupt (" +
                             e.what() + ")");
  }
}

namespace {

// Whether `key` names the weight of covariate `name`'s table `part`
// ("...condition.<name>.<part>.weight", in any network of the file).
bool is_table_of(const std::string& key, const std::string& name, const std::string& part) {
  const std::string tail = "condition." + name + "." + part;
  return key.size() > tail.size() && key.compare(key.size() - tail.size(), tail.size(), tail) == 0;
}

// `rows` new rows inserted at row `at` of `t`, each a copy of row `from`
// (or zero where from < 0).
Tensor with_rows(const Tensor& t, int64_t at, int64_t rows, int64_t from) {
  const Tensor fill = from < 0 ? at::zeros({rows, t.size(1)}, t.options())
                               : t.slice(0, from, from + 1).expand({rows, t.size(1)});
  return at::cat({t.slice(0, 0, at), fill, t.slice(0, at)}, 0);
}

}  // namespace

std::unique_ptr<GenerativeModel> GenerativeModel::with_levels(const std::vector<Covariate>& grown) const {
  const std::vector<Covariate>& now = covariates();
  if (grown.size() != now.size()) {
    throw std::invalid_argument("new levels need the model's covariates (" + covariate_names(now) + "), got " +
                                covariate_names(grown));
  }
  for (size_t k = 0; k < now.size(); ++k) {
    const Covariate &a = now[k], &b = grown[k];
    if (a.name != b.name || a.perturbation_set != b.perturbation_set || a.control != b.control || a.dosed != b.dosed) {
      throw std::invalid_argument("covariate " + std::to_string(k + 1) + " of the model is '" + a.name +
                                  "' as the model has it; new levels cannot change what it is");
    }
    if (b.levels.size() < a.levels.size() || !std::equal(a.levels.begin(), a.levels.end(), b.levels.begin())) {
      throw std::invalid_argument("the levels of covariate '" + a.name + "' must start with the model's, in order");
    }
  }
  check_covariates(grown);
  TensorBundle in = open_generative_model_bytes(to_bytes(), "model", false);
  TensorBundle out;
  out.meta = in.meta;
  out.meta.erase("lora_adapter");  // it adapted the model before its new levels
  for (size_t k = 0; k < now.size(); ++k) out.meta["covariates"][k]["levels"] = grown[k].levels;
  for (const auto& [key, tensor] : in.tensors()) {
    if (key.rfind("lora_adapter/", 0) == 0) continue;
    Tensor t = tensor;
    for (size_t k = 0; k < now.size(); ++k) {
      const int64_t old_levels = static_cast<int64_t>(now[k].levels.size());
      const int64_t added = static_cast<int64_t>(grown[k].levels.size()) - old_levels;
      if (added == 0) continue;
      if (is_table_of(key, now[k].name, "table.weight")) {
        t = with_rows(t, old_levels, added, old_levels);  // (levels + 1, D): null row last, copied to the new
      } else if (k == 0 && key.size() >= 9 && key.compare(key.size() - 9, 9, "log_theta") == 0 && t.dim() == 2 &&
                 t.size(0) == old_levels + 1) {
        t = with_rows(t, old_levels, added, old_levels);  // dispersion per gene and level: as unknown
      } else if (now[k].perturbation_set) {
        const int64_t old_members = static_cast<int64_t>(perturbation_member_names(now[k]).size());
        const int64_t new_members = static_cast<int64_t>(perturbation_member_names(grown[k]).size()) - old_members;
        if (new_members > 0 && is_table_of(key, now[k].name, "members.weight")) {
          t = with_rows(t, old_members, new_members, -1);  // (members, D)
        } else if (new_members > 0 && (is_table_of(key, now[k].name, "log_hill") ||
                                       is_table_of(key, now[k].name, "log_half_dose"))) {
          t = at::cat({t, at::zeros({new_members}, t.options())});  // (members)
        }
      }
    }
    out.put(key, t);
  }
  return load_bytes(model_file_bytes(out), "model with new levels");
}

void GenerativeModel::save(const std::string& path) const { write_file_atomically(path, to_bytes(), "model"); }

}  // namespace exprflow
