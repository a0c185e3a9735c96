#include "train/lora.hpp"

#include <cmath>
#include <stdexcept>

namespace exprflow {

LoraSettings LoraSettings::from(const Options& options) {
  LoraSettings s;
  s.rank = options.integer("lora_rank", 0);
  s.alpha = options.number("lora_alpha", 0.0);
  if (s.alpha == 0) s.alpha = static_cast<double>(s.rank);  // 0: the rank (an update scale of 1)
  s.seed = static_cast<uint64_t>(options.integer("seed", 1));
  if (s.rank < 0) throw std::invalid_argument("lora_rank must be at least 0 (0: train every weight)");
  s.layers = options.text("lora_layers", "all");
  if (s.layers != "all" && s.layers != "backbone") {
    throw std::invalid_argument("lora_layers must be 'all' or 'backbone', got '" + s.layers + "'");
  }
  if (s.alpha < 0) throw std::invalid_argument("lora_alpha must be at least 0 (0: the rank)");
  return s;
}

namespace {

// The adapted layers: name -> Linear, in the module tree's order.
std::vector<std::pair<std::string, torch::nn::LinearImpl*>> adapted_layers(torch::nn::Module& network,
                                                                           const std::string& which) {
  std::vector<std::pair<std::string, torch::nn::LinearImpl*>> all, in_backbone;
  for (const auto& item : network.named_modules("", /*include_self=*/false)) {
    auto* linear = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
    if (linear == nullptr) continue;
    all.emplace_back(item.key(), linear);
    if (item.key().rfind("backbone.", 0) == 0) in_backbone.emplace_back(item.key(), linear);
  }
  return which == "all" || in_backbone.empty() ? all : in_backbone;
}

// The condition embedding tables (rows per covariate level or perturbation
// member): modules under a "condition" module, in the module tree's order.
std::vector<std::pair<std::string, torch::nn::EmbeddingImpl*>> condition_tables(torch::nn::Module& network) {
  std::vector<std::pair<std::string, torch::nn::EmbeddingImpl*>> out;
  for (const auto& item : network.named_modules("", /*include_self=*/false)) {
    auto* table = dynamic_cast<torch::nn::EmbeddingImpl*>(item.value().get());
    const std::string& key = item.key();
    if (table && (key.rfind("condition.", 0) == 0 || key.find(".condition.") != std::string::npos)) {
      out.emplace_back(key, table);
    }
  }
  return out;
}

// The layer's own weight parameter (the member may point at an attached sum).
template <typename Layer>
Tensor registered_weight(Layer& layer) {
  return layer.named_parameters(/*recurse=*/false)["weight"];
}

}  // namespace

LoraAdaptersImpl::LoraAdaptersImpl(torch::nn::Module& network, const LoraSettings& settings) : settings_(settings) {
  if (settings.rank < 1) throw std::invalid_argument("LoRA adapters need lora_rank of at least 1");
  at::Generator generator = at::detail::createCPUGenerator(settings.seed);
  for (const auto& [name, layer] : adapted_layers(network, settings_.layers)) {
    const Tensor w = registered_weight(*layer);  // (out, in)
    const int64_t out = w.size(0), in = w.size(1), r = std::min<int64_t>(settings.rank, std::min(out, in));
    // As the LoRA paper: A ~ Kaiming-uniform scale, B = 0, so B A = 0 at the start.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    Tensor a = at::rand({r, in}, generator, at::TensorOptions().dtype(at::kFloat)).mul_(2 * bound).sub_(bound);
    std::string key = "a" + std::to_string(names_.size());
    a_.push_back(register_parameter(key, a.to(w.options())));
    b_.push_back(register_parameter("b" + std::to_string(names_.size()), at::zeros({out, r}, w.options())));
    names_.push_back(name);
  }
  if (names_.empty()) throw std::invalid_argument("the network has no Linear layers to adapt");
  if (!settings.condition_tables) return;
  for (const auto& [name, table] : condition_tables(network)) {
    const Tensor w = registered_weight(*table);  // (levels + 1, D)
    deltas_.push_back(register_parameter("e" + std::to_string(table_names_.size()), at::zeros_like(w)));
    table_names_.push_back(name);
  }
}

long LoraAdaptersImpl::trainable_count() {
  long n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

const std::vector<torch::nn::LinearImpl*>& LoraAdaptersImpl::layers_of(torch::nn::Module& network) {
  if (&network != cached_network_) {
    const auto layers = adapted_layers(network, settings_.layers);
    if (layers.size() != names_.size()) throw std::logic_error("LoRA: the network's layers differ from the adapters'");
    cached_layers_.clear();
    for (const auto& [name, layer] : layers) cached_layers_.push_back(layer);
    cached_tables_.clear();
    if (!table_names_.empty()) {
      const auto tables = condition_tables(network);
      if (tables.size() != table_names_.size()) throw std::logic_error("LoRA: the network's tables differ from the adapters'");
      for (const auto& [name, table] : tables) cached_tables_.push_back(table);
    }
    cached_network_ = &network;
  }
  return cached_layers_;
}

void LoraAdaptersImpl::attach(torch::nn::Module& network) {
  const double scale = settings_.scale();
  const auto& layers = layers_of(network);
  for (size_t i = 0; i < layers.size(); ++i) {
    Tensor w0 = registered_weight(*layers[i]);  // (out, in)
    w0.set_requires_grad(false);
    layers[i]->weight = w0 + scale * b_[i].mm(a_[i]);  // (out, in)
  }
  for (size_t i = 0; i < cached_tables_.size(); ++i) {
    Tensor w0 = registered_weight(*cached_tables_[i]);  // (levels + 1, D)
    w0.set_requires_grad(false);
    cached_tables_[i]->weight = w0 + deltas_[i];
  }
}

void LoraAdaptersImpl::merge(torch::nn::Module& network) {
  const double scale = settings_.scale();
  torch::NoGradGuard no_grad;
  const auto& layers = layers_of(network);
  for (size_t i = 0; i < layers.size(); ++i) {
    Tensor w0 = registered_weight(*layers[i]);  // (out, in)
    w0.add_(b_[i].mm(a_[i]), scale);
    layers[i]->weight = w0;
  }
  for (size_t i = 0; i < cached_tables_.size(); ++i) {
    Tensor w0 = registered_weight(*cached_tables_[i]);  // (levels + 1, D)
    w0.add_(deltas_[i]);
    cached_tables_[i]->weight = w0;
  }
}

TrainingTask adapter_task(TrainingTask task, torch::nn::Module& network, LoraAdaptersImpl& adapters,
                          LoraAdaptersImpl& average) {
  auto batch_loss = task.batch_loss;
  auto validation_loss = task.validation_loss;
  // The whole network is frozen: gradients reach only A and B.
  for (Tensor& p : network.parameters()) p.set_requires_grad(false);
  task.module = &adapters;
  task.ema = &average;
  task.batch_loss = [batch_loss, &network, &adapters](const std::vector<int>& cells, at::Generator& generator) {
    adapters.attach(network);
    return batch_loss(cells, generator);
  };
  task.validation_loss = [validation_loss, &network, &adapters](const std::vector<int>& cells) {
    adapters.attach(network);
    return validation_loss(cells);
  };
  return task;
}

void merge_adapters(torch::nn::Module& network, torch::nn::Module& ema, LoraAdaptersImpl& adapters,
                    LoraAdaptersImpl& average) {
  adapters.merge(network);
  for (Tensor& p : network.parameters()) p.set_requires_grad(true);
  average.merge(ema);
  for (Tensor& p : ema.parameters()) p.set_requires_grad(false);  // an average is never trained
}

}  // namespace exprflow
