#include "api/lora_adapter.hpp"

#include <stdexcept>

#include "io/model_archive.hpp"
#include "io/model_envelope.hpp"
#include "train/ema.hpp"

namespace exprflow {

namespace {

constexpr const char* kAdapterFormat = "exprflow-lora-adapter";
// Version 2: the condition tables' updates (e<i>, meta "tables").
constexpr int kAdapterVersion = 2;

// The CRC-32 of the network's and the EMA's weights as a model file stores
// them, so that an adapter saved alone is applied only to the weights it was
// trained from.
std::string base_fingerprint(torch::nn::Module& network, torch::nn::Module& ema) {
  TensorBundle weights;
  weights.put_module("network", network);
  weights.put_module("ema", ema);
  const std::string bytes = weights.to_bytes();
  return std::to_string(crc32(bytes.data(), bytes.size()));
}

long parameter_count(torch::nn::Module& module) {
  long n = 0;
  for (const Tensor& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace

TrainReport fine_tune_with_adapters(const TrainingTask& task, torch::nn::Module& network, torch::nn::Module& ema,
                                    const LoraSettings& settings, const std::vector<int>& train_cells,
                                    const std::vector<int>& validation_cells, const TrainerSettings& trainer,
                                    const TrainCallbacks& callbacks, TensorBundle& adapter) {
  const std::string base = base_fingerprint(network, ema);
  const long total = parameter_count(network);
  LoraAdapters raw(network, settings), average(network, settings);
  prepare_average(*average, raw->parameters().front().device());
  // adapter_task() freezes the network; its parameters get back what they were.
  std::vector<bool> trainable;
  for (const Tensor& p : network.parameters()) trainable.push_back(p.requires_grad());
  const TrainReport report =
      run_training(adapter_task(task, network, *raw, *average), train_cells, validation_cells, trainer, callbacks);
  merge_adapters(network, ema, *raw, *average);
  size_t i = 0;
  for (Tensor& p : network.parameters()) p.set_requires_grad(trainable.at(i++));

  adapter = TensorBundle();
  adapter.meta = archive_meta(kAdapterFormat, kAdapterVersion, Options());
  adapter.meta["rank"] = settings.rank;
  adapter.meta["alpha"] = settings.alpha;
  adapter.meta["layers"] = raw->layer_names();
  adapter.meta["tables"] = raw->table_names();
  adapter.meta["which_layers"] = settings.layers;
  adapter.meta["base"] = base;
  adapter.meta["trainable_parameters"] = raw->trainable_count();
  adapter.meta["network_parameters"] = total;
  adapter.put_module("raw", *raw);
  adapter.put_module("average", *average);
  return report;
}

TrainReport train_or_adapt(const TrainingTask& task, torch::nn::Module& network, torch::nn::Module& ema,
                           const Options& options, const std::vector<int>& train_cells,
                           const std::vector<int>& validation_cells, const TrainerSettings& trainer,
                           const TrainCallbacks& callbacks, const Tensor& clip_low, const Tensor& clip_high,
                           TensorBundle& adapter, Options& annotations,
                           const TrainerState* resume) {
  const LoraSettings lora = LoraSettings::from(options);
  if (lora.rank == 0) return run_training(task, train_cells, validation_cells, trainer, callbacks, resume);
  if (resume || task.checkpoint) {
    throw std::invalid_argument("checkpoints are written and resumed for training, not for LoRA fine-tuning");
  }
  if (task.group) throw std::invalid_argument("LoRA fine-tuning runs in one process");
  TrainReport report = fine_tune_with_adapters(task, network, ema, lora, train_cells, validation_cells, trainer,
                                               callbacks, adapter);
  // The clipping box the fine-tuning data widened travels with the adapter.
  adapter.put("clip_low", clip_low);
  adapter.put("clip_high", clip_high);
  adapter.meta["history"] = history_to_json(report.history);  // so that a model the adapter rebuilds shows it
  annotations = annotations.merged(adapter_annotations(adapter), /*known_only=*/false);
  return report;
}

std::string adapter_file_bytes(const TensorBundle& adapter) {
  if (!adapter.meta.contains("rank")) {
    throw std::invalid_argument("the model holds no LoRA adapter: fine-tune it with a LoRA rank first");
  }
  return model_file_bytes(adapter);
}

TensorBundle apply_adapter_bytes(std::string_view bytes, const std::string& source, torch::nn::Module& network,
                                 torch::nn::Module& ema) {
  TensorBundle adapter = open_model_bytes(bytes, source, kAdapterFormat, kAdapterVersion, "LoRA adapter", false);
  if (adapter.meta.at("base").get<std::string>() != base_fingerprint(network, ema)) {
    throw std::invalid_argument("'" + source + "' adapts another model's weights: apply it to the model it was "
                                "fine-tuned from, as it was before fine-tuning");
  }
  LoraSettings settings;
  settings.rank = adapter.meta.at("rank").get<int64_t>();
  settings.alpha = adapter.meta.at("alpha").get<double>();
  settings.layers = adapter.meta.at("which_layers").get<std::string>();
  settings.condition_tables = adapter.meta.contains("tables");  // version 1 adapted Linear layers only
  LoraAdapters raw(network, settings), average(network, settings);
  if (raw->layer_names() != adapter.meta.at("layers").get<std::vector<std::string>>() ||
      (settings.condition_tables && raw->table_names() != adapter.meta.at("tables").get<std::vector<std::string>>())) {
    throw std::invalid_argument("'" + source + "' adapts other layers than this model has");
  }
  adapter.get_module("raw", *raw);
  adapter.get_module("average", *average);
  merge_adapters(network, ema, *raw, *average);
  return adapter;
}

TensorBundle apply_adapter_and_box(std::string_view bytes, const std::string& source, torch::nn::Module& network,
                                   torch::nn::Module& ema, Tensor& low, Tensor& high,
                                   std::vector<EpochRecord>& history) {
  TensorBundle adapter = apply_adapter_bytes(bytes, source, network, ema);
  const std::vector<int64_t> shape = low.sizes().vec();
  low = adapter.get("clip_low", shape, at::kFloat).to(low.device());
  high = adapter.get("clip_high", shape, at::kFloat).to(high.device());
  if (adapter.meta.contains("history")) {
    TrainReport tuning;
    tuning.history = history_from_json(adapter.meta.at("history"));
    append_history(history, tuning, "lora");
  }
  return adapter;
}

void write_adapter(TensorBundle& model_bundle, const TensorBundle& adapter) {
  if (!adapter.meta.contains("rank")) return;
  model_bundle.meta["lora_adapter"] = adapter.meta;
  for (const auto& [name, tensor] : adapter.tensors()) model_bundle.put("lora_adapter/" + name, tensor);
}

TensorBundle read_adapter(const TensorBundle& model_bundle) {
  TensorBundle adapter;
  if (!model_bundle.meta.contains("lora_adapter")) return adapter;
  adapter.meta = model_bundle.meta.at("lora_adapter");
  const std::string prefix = "lora_adapter/";
  for (const auto& [name, tensor] : model_bundle.tensors()) {
    if (name.rfind(prefix, 0) == 0) adapter.put(name.substr(prefix.size()), tensor);
  }
  return adapter;
}

Options adapter_annotations(const TensorBundle& adapter) {
  Options o;
  if (!adapter.meta.contains("rank")) return o;
  o.set("lora_rank", adapter.meta.at("rank").get<double>());
  o.set("lora_trainable_parameters", adapter.meta.at("trainable_parameters").get<double>());
  o.set("lora_network_parameters", adapter.meta.at("network_parameters").get<double>());
  return o;
}

}  // namespace exprflow
