#include "connectivity/connectivity_model.hpp"


#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "connectivity/registry.hpp"
#include "io/model_archive.hpp"
#include "io/model_envelope.hpp"
#include "runtime/device.hpp"
#include "tokenize/gene_tokens.hpp"
#include "train/ema.hpp"
#include "train/trainer.hpp"

namespace exprflow {

namespace {

constexpr const char* kFormat = "exprflow-connectivity-model";
constexpr int kFormatVersion = 1;
// Attention weights one prediction pass may hold (MB): at 1,645 genes a
// cross-attention pair needs ~43 MB per layer, so batch 512 in one pass would
// need ~22 GB.
constexpr double kPredictBudgetMb = 1024;

Options full_spec(const Options& spec) {
  if (!spec.has("architecture")) {
    std::string valid;
    for (const std::string& name : connectivity_architectures()) valid += (valid.empty() ? "'" : ", '") + name + "'";
    throw std::invalid_argument("the spec needs an 'architecture'; valid: " + valid);
  }
  return connectivity_defaults(spec.text("architecture")).merged(spec, /*known_only=*/true);
}

std::vector<Tensor> all_tensors(torch::nn::Module& module) {
  std::vector<Tensor> t = module.parameters();
  for (const Tensor& b : module.buffers()) t.push_back(b);
  return t;
}

Tensor index_tensor(const std::vector<int>& values, const std::vector<int>& rows) {
  std::vector<int64_t> v(rows.size());
  for (size_t k = 0; k < rows.size(); ++k) v[k] = values[rows[k]];
  return at::tensor(v, at::TensorOptions().dtype(at::kLong));  // (B,)
}

}  // namespace

// ------------------------------------------------------------ construction ---
PairConnectivityModel::PairConnectivityModel(const Options& spec, const GeneEmbedding& genes)
    : spec_(full_spec(spec)), genes_(genes), device_(parse_device(spec_.text("device"))) {
  check_gene_embedding(genes_);
  // Initialisation draws from LibTorch's global generator: the seed fixes the
  // initial weights.
  at::manual_seed(static_cast<uint64_t>(spec_.integer("seed")));
  network_ = build_pair_network(spec_, genes_);
  ema_ = build_pair_network(spec_, genes_);
  network_->to(device_);
  ema_->to(device_);
  ema_->eval();
  for (Tensor& p : ema_->parameters()) p.set_requires_grad(false);
  // An untrained model predicts with its initial weights, the same in both copies.
  torch::NoGradGuard no_grad;
  std::vector<Tensor> from = all_tensors(*network_), to = all_tensors(*ema_);
  for (size_t k = 0; k < from.size(); ++k) to[k].copy_(from[k]);
}

std::unique_ptr<ConnectivityModel> ConnectivityModel::create(const Options& spec, const GeneEmbedding& genes) {
  return std::make_unique<PairConnectivityModel>(spec, genes);
}

std::vector<std::string> ConnectivityModel::architectures() { return connectivity_architectures(); }

Options ConnectivityModel::default_spec(const std::string& architecture) {
  return connectivity_defaults(architecture);
}

Options ConnectivityModel::default_train_options(const std::string& architecture) {
  return connectivity_training_defaults(architecture);
}

long PairConnectivityModel::parameter_count() const {
  long n = 0;
  for (const Tensor& p : network_->parameters()) n += p.numel();
  return n;
}

long PairConnectivityModel::pairs_per_pass(double budget_mb, bool training) const {
  // Forward: scores and weights of one layer at a time (2 copies); training
  // keeps scores, weights and their gradient for every layer (3 per layer).
  const double copies = training ? 3.0 * network_->n_layers() : 2.0;
  const double bytes_per_pair = 4.0 * copies * network_->attention_size_per_pair();
  if (!(bytes_per_pair > 0)) return std::numeric_limits<int>::max();  // no attention: no bound
  return std::max(1L, static_cast<long>(std::min(budget_mb * 1048576.0 / bytes_per_pair, 1e9)));
}

// ------------------------------------------------------------------ inputs ---
PairConnectivityModel::RegionTensors PairConnectivityModel::region_tensors(const RegionData& regions) const {
  const int R = regions.n_regions, G = regions.n_genes;
  if (R < 1) throw std::invalid_argument("the region data has no regions");
  if (G != genes_.n_genes) {
    throw std::invalid_argument("the expression has " + std::to_string(G) + " genes but the model was built for " +
                                std::to_string(genes_.n_genes));
  }
  if (regions.expression.size() != static_cast<size_t>(R) * G) {
    throw std::invalid_argument("the expression holds " + std::to_string(regions.expression.size()) +
                                " values; " + std::to_string(R) + " regions x " + std::to_string(G) +
                                " genes need " + std::to_string(static_cast<size_t>(R) * G));
  }
  for (size_t k = 0; k < regions.expression.size(); ++k) {
    const float v = regions.expression[k];
    if (!(v >= 0.0f && v <= 1.0f)) {  // also catches NaN
      throw std::invalid_argument("expression must be finite and scaled to [0, 1]; region " +
                                  std::to_string(k / G + 1) + ", gene " + std::to_string(k % G + 1) + " is " +
                                  format_number(v));
    }
  }
  RegionTensors out;
  out.expression = at::tensor(regions.expression, at::TensorOptions().dtype(at::kFloat)).view({R, G}).to(device_);  // (R, G)
  if (!regions.coords.empty()) {
    if (regions.coords.size() != static_cast<size_t>(R) * 3) {
      throw std::invalid_argument("coords must hold 3 values (x, y, z) per region: " + std::to_string(R) +
                                  " regions need " + std::to_string(3 * R) + " values, got " +
                                  std::to_string(regions.coords.size()));
    }
    for (float v : regions.coords) {
      if (!std::isfinite(v)) throw std::invalid_argument("coords must be finite");
    }
    std::array<double, 3> low = coord_low_, span = coord_span_;
    if (!coordinate_scale_fitted_) {
      // Not trained yet: the ranges of the data at hand.
      for (int a = 0; a < 3; ++a) {
        double lo = INFINITY, hi = -INFINITY;
        for (int r = 0; r < R; ++r) {
          lo = std::min(lo, double(regions.coords[r * 3 + a]));
          hi = std::max(hi, double(regions.coords[r * 3 + a]));
        }
        low[a] = lo;
        span[a] = hi > lo ? hi - lo : 1.0;
      }
    }
    std::vector<float> scaled(regions.coords.size());
    for (int r = 0; r < R; ++r) {
      for (int a = 0; a < 3; ++a) scaled[r * 3 + a] = float(2.0 * (regions.coords[r * 3 + a] - low[a]) / span[a] - 1.0);
    }
    out.coords = at::tensor(scaled, at::TensorOptions().dtype(at::kFloat)).view({R, 3}).to(device_);  // (R, 3)
  }
  return out;
}

void PairConnectivityModel::fit_coordinate_scale(const RegionData& regions) {
  if (coordinate_scale_fitted_ || regions.coords.empty()) return;
  for (int a = 0; a < 3; ++a) {
    double lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < regions.n_regions; ++r) {
      lo = std::min(lo, double(regions.coords[r * 3 + a]));
      hi = std::max(hi, double(regions.coords[r * 3 + a]));
    }
    coord_low_[a] = lo;
    coord_span_[a] = hi > lo ? hi - lo : 1.0;
  }
  coordinate_scale_fitted_ = true;
}

void PairConnectivityModel::check_pairs(const RegionData& regions, const RegionPairs& pairs, const char* what,
                                        bool need_target) const {
  const std::string name(what);
  if (pairs.i.size() != pairs.j.size()) {
    throw std::invalid_argument(name + ": i and j must have the same length (" + std::to_string(pairs.i.size()) +
                                " and " + std::to_string(pairs.j.size()) + ")");
  }
  for (size_t k = 0; k < pairs.i.size(); ++k) {
    for (int r : {pairs.i[k], pairs.j[k]}) {
      if (r < 0 || r >= regions.n_regions) {
        throw std::invalid_argument(name + ": pair " + std::to_string(k + 1) + " refers to region " +
                                    std::to_string(r + 1) + " but the data has " +
                                    std::to_string(regions.n_regions) + " regions");
      }
    }
  }
  if (need_target) {
    if (pairs.target.size() != pairs.i.size()) {
      throw std::invalid_argument(name + ": one target per pair is needed (" + std::to_string(pairs.i.size()) +
                                  " pairs, " + std::to_string(pairs.target.size()) + " targets)");
    }
    for (size_t k = 0; k < pairs.target.size(); ++k) {
      if (!std::isfinite(pairs.target[k])) {
        throw std::invalid_argument(name + ": the target of pair " + std::to_string(k + 1) + " is not finite");
      }
    }
  }
}

void PairConnectivityModel::fit_network_scaling(const RegionTensors& data, const RegionPairs& train_pairs) {
  auto as_index = [&](const std::vector<int>& v) {
    return at::tensor(std::vector<int64_t>(v.begin(), v.end()), at::TensorOptions().dtype(at::kLong)).to(device_);
  };
  PairBatch train;  // the region table and the pairs' rows in it; no (P, G) copies
  train.expression = data.expression;
  train.i = as_index(train_pairs.i);
  train.j = as_index(train_pairs.j);
  Tensor target = at::tensor(train_pairs.target, at::TensorOptions().dtype(at::kFloat)).to(device_);  // (P,)
  network_->fit_scaling(train, target);
  // The averaged copy predicts: it needs the same statistics (buffers are not averaged).
  torch::NoGradGuard no_grad;
  std::vector<Tensor> from = network_->buffers(), to = ema_->buffers();
  for (size_t k = 0; k < from.size(); ++k) to[k].copy_(from[k]);
}

PairBatch PairConnectivityModel::make_batch(const RegionTensors& data, const std::vector<int>& i,
                                            const std::vector<int>& j, const std::vector<int>& rows) const {
  Tensor ii = index_tensor(i, rows).to(device_), jj = index_tensor(j, rows).to(device_);  // (B,)
  PairBatch batch;
  batch.x_i = data.expression.index_select(0, ii);  // (B, G)
  batch.x_j = data.expression.index_select(0, jj);  // (B, G)
  batch.expression = data.expression;               // (R, G)
  batch.i = ii;
  batch.j = jj;
  if (data.coords.defined()) {
    batch.coords = at::cat({data.coords.index_select(0, ii), data.coords.index_select(0, jj)}, 1);  // (B, 6)
  }
  return batch;
}

// ------------------------------------------------------------------- train ---
TrainReport PairConnectivityModel::train(const RegionData& regions, const RegionPairs& train_pairs,
                                         const RegionPairs& validation_pairs, const Options& train_options,
                                         const TrainCallbacks& callbacks) {
  const Options options = default_train_options(spec_.text("architecture")).merged(train_options, /*known_only=*/true);
  TrainerSettings settings = TrainerSettings::from(options);
  if (!options.flag("cosine", true)) settings.min_lr_ratio = 1.0;  // constant after the warm-up
  const double budget_mb = options.number("memory_budget_mb");
  if (!(budget_mb > 0)) throw std::invalid_argument("memory_budget_mb must be positive");
  const size_t train_pass = static_cast<size_t>(pairs_per_pass(budget_mb, true));
  const size_t eval_pass = std::min(static_cast<size_t>(settings.batch_size),
                                    static_cast<size_t>(pairs_per_pass(budget_mb, false)));
  if (train_pairs.i.empty()) throw std::invalid_argument("train pairs: no pairs to train on");
  check_pairs(regions, train_pairs, "train pairs", true);
  check_pairs(regions, validation_pairs, "validation pairs", true);
  region_tensors(regions);  // validates before the scale is fixed
  fit_coordinate_scale(regions);
  const RegionTensors data = region_tensors(regions);
  if (!trained_) fit_network_scaling(data, train_pairs);

  // One pair list: training pairs first, then the validation pairs.
  std::vector<int> pi = train_pairs.i, pj = train_pairs.j;
  std::vector<float> target = train_pairs.target;
  pi.insert(pi.end(), validation_pairs.i.begin(), validation_pairs.i.end());
  pj.insert(pj.end(), validation_pairs.j.begin(), validation_pairs.j.end());
  target.insert(target.end(), validation_pairs.target.begin(), validation_pairs.target.end());
  const int n_train = static_cast<int>(train_pairs.i.size()), n_all = static_cast<int>(pi.size());
  std::vector<int> train_rows(n_train), validation_rows(n_all - n_train);
  std::iota(train_rows.begin(), train_rows.end(), 0);
  std::iota(validation_rows.begin(), validation_rows.end(), n_train);
  auto targets_of = [&](const std::vector<int>& rows) {
    std::vector<float> y(rows.size());
    for (size_t k = 0; k < rows.size(); ++k) y[k] = target[rows[k]];
    return at::tensor(y, at::TensorOptions().dtype(at::kFloat)).to(device_);  // (B,)
  };

  TrainingTask task;
  task.module = network_.get();
  task.ema = ema_.get();
  task.batch_loss = [&](const std::vector<int>& rows, at::Generator&) -> Tensor {
    if (rows.size() <= train_pass) {
      Tensor prediction = network_->forward(make_batch(data, pi, pj, rows));  // (B,)
      Tensor loss = at::mse_loss(prediction, targets_of(rows));
      Tensor penalty = network_->penalty();
      return penalty.defined() ? loss + penalty : loss;
    }
    // Too large for one pass: back-propagate the parts here (their gradients
    // add up to the whole batch's mean loss) and hand the trainer a detached
    // leaf, whose backward() adds nothing to the parameters.
    double total = 0;
    for (size_t lo = 0; lo < rows.size(); lo += train_pass) {
      std::vector<int> part(rows.begin() + lo, rows.begin() + std::min(rows.size(), lo + train_pass));
      Tensor prediction = network_->forward(make_batch(data, pi, pj, part));  // (b,)
      Tensor loss = at::mse_loss(prediction, targets_of(part), at::Reduction::Sum) / double(rows.size());
      loss.backward();
      total += loss.item<double>();
    }
    Tensor penalty = network_->penalty();  // once per batch, not per pass
    if (penalty.defined()) {
      penalty.backward();
      total += penalty.item<double>();
    }
    return at::tensor(total, at::TensorOptions().dtype(at::kDouble)).requires_grad_(true);
  };
  // The EMA weights are the ones predict() uses, so they pick the best epoch.
  task.validation_loss = [&](const std::vector<int>& rows) {
    torch::NoGradGuard no_grad;
    ema_->eval();
    double total = 0;
    for (size_t lo = 0; lo < rows.size(); lo += eval_pass) {
      std::vector<int> part(rows.begin() + lo, rows.begin() + std::min(rows.size(), lo + eval_pass));
      Tensor error = ema_->forward(make_batch(data, pi, pj, part)) - targets_of(part);  // (B,)
      total += error.pow(2).sum().item<double>();
    }
    return total / rows.size();
  };

  // Dropout draws from the global generator: seeding it makes a run repeatable.
  at::manual_seed(settings.seed);
  TrainReport report = run_training(task, train_rows, validation_rows, settings, callbacks);
  ema_->eval();
  append_history(history_, report);
  trained_ = trained_ || report.steps > 0;
  return report;
}

// ----------------------------------------------------------------- predict ---
std::vector<float> PairConnectivityModel::predict(const RegionData& regions, const RegionPairs& pairs,
                                                  int batch_size) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1, got " + std::to_string(batch_size));
  check_pairs(regions, pairs, "pairs", false);
  const RegionTensors data = region_tensors(regions);
  torch::NoGradGuard no_grad;
  ema_->eval();
  std::vector<float> out;
  out.reserve(pairs.i.size());
  const int n = static_cast<int>(pairs.i.size());
  // Pairs are independent in eval mode: a batch too large for memory runs in parts.
  const int pass = static_cast<int>(std::min<long>(batch_size, pairs_per_pass(kPredictBudgetMb, false)));
  for (int lo = 0; lo < n; lo += pass) {
    std::vector<int> rows(std::min(n, lo + pass) - lo);
    std::iota(rows.begin(), rows.end(), lo);
    Tensor y = ema_->forward(make_batch(data, pairs.i, pairs.j, rows)).to(at::kCPU).contiguous();  // (B,)
    out.insert(out.end(), y.data_ptr<float>(), y.data_ptr<float>() + y.numel());
  }
  return out;
}

std::vector<float> PairConnectivityModel::attention_map(const RegionData& regions, int i, int j, int layer,
                                                        int* rows, int* cols) {
  RegionPairs pair;
  pair.i = {i};
  pair.j = {j};
  check_pairs(regions, pair, "attention pair", false);
  if (ema_->n_layers() == 0) {
    throw std::invalid_argument("architecture '" + spec_.text("architecture") + "' has no attention maps");
  }
  if (layer < 0 || layer >= ema_->n_layers()) {
    throw std::invalid_argument("layer " + std::to_string(layer) + " does not exist: the model has layers 0.." +
                                std::to_string(ema_->n_layers() - 1) + " (0-based)");
  }
  const RegionTensors data = region_tensors(regions);
  torch::NoGradGuard no_grad;
  ema_->eval();
  Tensor w = ema_->attention_map(make_batch(data, pair.i, pair.j, {0}), layer)[0].to(at::kCPU).contiguous();  // (T, S)
  *rows = static_cast<int>(w.size(0));
  *cols = static_cast<int>(w.size(1));
  return std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
}

// --------------------------------------------------------------- save/load ---
std::string PairConnectivityModel::to_bytes() const {
  Json meta = archive_meta(kFormat, kFormatVersion, spec_);
  meta["trained"] = trained_;
  meta["coordinate_scale_fitted"] = coordinate_scale_fitted_;
  meta["coord_low"] = coord_low_;  // std::array<double, 3> -> [x, y, z]
  meta["coord_span"] = coord_span_;
  meta["history"] = history_to_json(history_);

  TensorBundle bundle;
  bundle.meta = meta;
  const int64_t G = genes_.n_genes, E = genes_.dim;
  bundle.put("gene_vectors", at::tensor(genes_.values, at::TensorOptions().dtype(at::kFloat)).view({G, E}));
  std::vector<int64_t> has(genes_.has_vector.begin(), genes_.has_vector.end());
  bundle.put("gene_has_vector", at::tensor(has, at::TensorOptions().dtype(at::kLong)));
  bundle.put_module("network", *network_);
  bundle.put_module("ema", *ema_);
  return model_file_bytes(bundle);
}

std::unique_ptr<PairConnectivityModel> PairConnectivityModel::from_bytes(std::string_view bytes,
                                                                        const std::string& source, bool trust_legacy) {
  const std::string unreadable = "cannot read connectivity model file '" + source + "': ";
  const TensorBundle bundle =
      open_model_bytes(bytes, source, kFormat, kFormatVersion, "connectivity model", trust_legacy);
  const Json& meta = bundle.meta;
  try {
    Options spec = Options::from_json(meta.at("spec").dump());
    spec.set("device", "cpu");  // a loaded model starts on the CPU
    const Tensor& vectors = bundle.get("gene_vectors");
    if (vectors.dim() != 2 || vectors.scalar_type() != at::kFloat) {
      throw std::invalid_argument("'gene_vectors' is not a float matrix");
    }
    const Tensor& has = bundle.get("gene_has_vector", {vectors.size(0)}, at::kLong);
    GeneEmbedding genes;
    genes.n_genes = static_cast<int>(vectors.size(0));
    genes.dim = static_cast<int>(vectors.size(1));
    genes.values.assign(vectors.data_ptr<float>(), vectors.data_ptr<float>() + vectors.numel());
    genes.has_vector.assign(has.data_ptr<int64_t>(), has.data_ptr<int64_t>() + has.numel());
    auto model = std::make_unique<PairConnectivityModel>(spec, genes);
    bundle.get_module("network", *model->network_);
    bundle.get_module("ema", *model->ema_);
    model->ema_->eval();
    model->trained_ = meta.at("trained").get<bool>();
    model->coordinate_scale_fitted_ = meta.at("coordinate_scale_fitted").get<bool>();
    const auto low = meta.at("coord_low").get<std::vector<double>>(), span = meta.at("coord_span").get<std::vector<double>>();
    if (low.size() != 3 || span.size() != 3) throw std::invalid_argument("coordinate scale must have 3 values");
    for (int a = 0; a < 3; ++a) {
      model->coord_low_[a] = low[a];
      model->coord_span_[a] = span[a];
    }
    model->history_ = history_from_json(meta.at("history"));
    return model;
  } catch (const std::exception& e) {
    throw std::runtime_error(unreadable + "the file is incomplete or corrupt (" + e.what() + ")");
  }
}

std::unique_ptr<ConnectivityModel> ConnectivityModel::load(const std::string& path, bool trust_legacy) {
  return load_bytes(read_file_bytes(path, "connectivity model"), path, trust_legacy);
}

std::unique_ptr<ConnectivityModel> ConnectivityModel::load_bytes(std::string_view bytes, const std::string& source,
                                                                 bool trust_legacy) {
  return PairConnectivityModel::from_bytes(bytes, source, trust_legacy);
}

void ConnectivityModel::save(const std::string& path) const {
  write_file_atomically(path, to_bytes(), "connectivity model");
}

}  // namespace exprflow
