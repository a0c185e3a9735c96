#include "train/checkpoint.hpp"

#include <sstream>
#include <stdexcept>

#include "io/model_archive.hpp"
#include "io/model_envelope.hpp"
#include "io/tensor_bundle.hpp"
#include "train/trainer.hpp"

namespace exprflow {

namespace {

constexpr const char* kCheckpointFormat = "exprflow-checkpoint";
// Version 2: one pair of generator states per rank ("ranks"); version 1
// (one process) held a single pair, read as one rank.
constexpr int kCheckpointVersion = 2;

// Doubles travel as float64 scalars, not JSON text: infinity (no best
// validation loss yet) has no JSON form, and a bit-exact resume wants the
// exact value of the epoch's loss sum.
void put_double(TensorBundle& bundle, const std::string& name, double value) {
  bundle.put(name, at::scalar_tensor(value, at::TensorOptions().dtype(at::kDouble)));
}
double get_double(const TensorBundle& bundle, const std::string& name) {
  return bundle.get(name, {}, at::kDouble).item<double>();
}

void put_list(TensorBundle& bundle, const std::string& prefix, const std::vector<Tensor>& values) {
  for (size_t i = 0; i < values.size(); ++i) bundle.put(prefix + "/" + std::to_string(i), values[i]);
}
std::vector<Tensor> get_list(const TensorBundle& bundle, const std::string& prefix, size_t n) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < n; ++i) out.push_back(bundle.get(prefix + "/" + std::to_string(i)).clone());
  return out;
}

Tensor int_tensor(const std::vector<int>& values) {
  return at::tensor(std::vector<int64_t>(values.begin(), values.end()), at::TensorOptions().dtype(at::kLong));
}

}  // namespace

Json trainer_settings_json(const TrainerSettings& s) {
  return Json{{"epochs", s.epochs},
              {"batch_size", s.batch_size},
              {"learning_rate", s.learning_rate},
              {"weight_decay", s.weight_decay},
              {"warmup_fraction", s.warmup_fraction},
              {"min_lr_ratio", s.min_lr_ratio},
              {"grad_clip", s.grad_clip},
              {"ema_decay", s.ema_decay},
              {"patience", s.patience},
              {"seed", s.seed},
              {"precision", matmul_precision_name(s.precision)}};
}

void check_same_settings(const Json& stored, const TrainerSettings& settings) {
  const Json now = trainer_settings_json(settings);
  // Checkpoints from before the precision setting trained in float32.
  Json before = stored;
  if (!before.contains("precision")) before["precision"] = matmul_precision_name(MatmulPrecision::float32);
  for (auto it = now.begin(); it != now.end(); ++it) {
    if (!before.contains(it.key()) || before.at(it.key()) != it.value()) {
      throw std::invalid_argument("the checkpoint's run trained with " + it.key() + " = " +
                                  (before.contains(it.key()) ? before.at(it.key()).dump() : std::string("(none)")) +
                                  ", this one with " + it.value().dump() +
                                  ": resume with the settings the run started with");
    }
  }
}

void write_checkpoint(const std::string& path, const std::string& model_bytes, const std::string& stage,
                      const TrainerState& s) {
  TensorBundle bundle;
  bundle.meta = archive_meta(kCheckpointFormat, kCheckpointVersion, Options());
  bundle.meta["stage"] = stage;
  bundle.meta["epoch"] = s.epoch;
  bundle.meta["batch"] = s.batch;
  bundle.meta["loss_count"] = s.loss_count;
  bundle.meta["steps"] = s.report.steps;
  bundle.meta["best_epoch"] = s.report.best_epoch;
  bundle.meta["stopped_early"] = s.report.stopped_early;
  bundle.meta["history"] = history_to_json(s.report.history);
  bundle.meta["epochs_without_improvement"] = s.epochs_without_improvement;
  bundle.meta["n_params"] = s.params.size();
  bundle.meta["n_best"] = s.best_params.size();
  bundle.meta["optimiser_steps"] = s.optimiser.steps;
  bundle.meta["shuffle_engine"] = s.shuffle_engine;
  bundle.meta["settings"] = s.settings;
  put_double(bundle, "loss_sum", s.loss_sum);
  put_double(bundle, "epoch_seconds", s.epoch_seconds);
  put_double(bundle, "best_validation", s.best_validation);
  bundle.put("order", int_tensor(s.order));
  if (s.generators.empty() || s.generators.size() != s.global_generators.size()) {
    throw std::logic_error("a checkpoint needs one pair of generator states per rank");
  }
  bundle.meta["ranks"] = s.generators.size();
  put_list(bundle, "generators", s.generators);
  put_list(bundle, "global_generators", s.global_generators);
  put_list(bundle, "params", s.params);
  put_list(bundle, "ema", s.ema);
  put_list(bundle, "best_params", s.best_params);
  put_list(bundle, "best_ema", s.best_ema);
  put_list(bundle, "exp_avg", s.optimiser.exp_avg);
  put_list(bundle, "exp_avg_sq", s.optimiser.exp_avg_sq);
  bundle.put("model", at::from_blob(const_cast<char*>(model_bytes.data()), {static_cast<int64_t>(model_bytes.size())},
                                    at::TensorOptions().dtype(at::kByte)));
  write_file_atomically(path, model_file_bytes(bundle), "checkpoint");
}

Checkpoint read_checkpoint(const std::string& path) {
  const std::string bytes = read_file_bytes(path, "checkpoint");
  const TensorBundle bundle = open_model_bytes(bytes, path, kCheckpointFormat, kCheckpointVersion, "checkpoint",
                                               /*trust_legacy=*/false);
  try {
    const Json& m = bundle.meta;
    Checkpoint c;
    c.stage = m.at("stage").get<std::string>();
    TrainerState& s = c.state;
    s.epoch = m.at("epoch").get<long>();
    s.batch = m.at("batch").get<long>();
    s.loss_count = m.at("loss_count").get<long>();
    s.report.steps = m.at("steps").get<long>();
    s.report.best_epoch = m.at("best_epoch").get<int>();
    s.report.stopped_early = m.at("stopped_early").get<bool>();
    s.report.history = history_from_json(m.at("history"));
    s.epochs_without_improvement = m.at("epochs_without_improvement").get<long>();
    s.optimiser.steps = m.at("optimiser_steps").get<std::vector<int64_t>>();
    s.shuffle_engine = m.at("shuffle_engine").get<std::string>();
    s.settings = m.at("settings");
    s.loss_sum = get_double(bundle, "loss_sum");
    s.epoch_seconds = get_double(bundle, "epoch_seconds");
    s.best_validation = get_double(bundle, "best_validation");
    const Tensor& order = bundle.get("order");
    if (order.scalar_type() != at::kLong || order.dim() != 1) throw std::invalid_argument("'order' is not a vector");
    s.order.assign(order.data_ptr<int64_t>(), order.data_ptr<int64_t>() + order.numel());
    if (m.contains("ranks")) {
      const size_t ranks = m.at("ranks").get<size_t>();
      s.generators = get_list(bundle, "generators", ranks);
      s.global_generators = get_list(bundle, "global_generators", ranks);
    } else {  // version 1
      s.generators = {bundle.get("generator").clone()};
      s.global_generators = {bundle.get("global_generator").clone()};
    }
    const size_t n = m.at("n_params").get<size_t>(), n_best = m.at("n_best").get<size_t>();
    s.params = get_list(bundle, "params", n);
    s.ema = get_list(bundle, "ema", n);
    s.best_params = get_list(bundle, "best_params", n_best);
    s.best_ema = get_list(bundle, "best_ema", n_best);
    s.optimiser.exp_avg = get_list(bundle, "exp_avg", n);
    s.optimiser.exp_avg_sq = get_list(bundle, "exp_avg_sq", n);
    const Tensor& model = bundle.get("model");
    if (model.scalar_type() != at::kByte) throw std::invalid_argument("'model' is not bytes");
    c.model_bytes.assign(static_cast<const char*>(model.data_ptr()), static_cast<size_t>(model.numel()));
    return c;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read checkpoint file '" + path + "': the file is incomplete or corrupt (" +
                             e.what() + ")");
  }
}

CheckpointOptions CheckpointOptions::from(const Options& options) {
  CheckpointOptions c;
  c.path = options.text("checkpoint");
  c.resume = options.text("resume");
  return c;
}

}  // namespace exprflow
