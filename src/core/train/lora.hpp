// LoRA (low-rank adaptation) of a trained network: every adapted Linear
// layer's weight becomes W0 + (alpha / r) B A, with W0 frozen, A (r, in)
// drawn small and B (out, r) zero, so that fine-tuning starts from the
// trained network exactly and optimises r (in + out) numbers per layer
// instead of in x out.
//
// How it reaches the layers without changing them: LibTorch's Linear reads
// its `weight` member in forward, and the module's parameter table holds its
// own handle to the same tensor. attach() points the member at the
// differentiable sum (the table keeps W0); merge() writes the sum into W0 and
// points the member back, leaving a plain network with no overhead.
//
// Adapted layers (lora_layers): "all" Linear layers of the network, or only
// those inside its "backbone" (attention projections, MLPs, adaLN / FiLM
// modulation; all where the network has no backbone module); and, either
// way, the condition embedding tables, each with a dense update.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "exprflow/torch_prelude.hpp"
#include "train/trainer.hpp"

namespace exprflow {

struct LoraSettings {
  int64_t rank = 8;
  double alpha = 8;  // the update is scaled by alpha / rank
  uint64_t seed = 1;
  std::string layers = "all";  // "all" Linear layers, or those in the "backbone" only
  // The condition embedding tables also get a (dense, zero-started) update,
  // so that levels the base model never trained (GenerativeModel::
  // with_levels) learn their embedding: one row per level, a few numbers.
  bool condition_tables = true;
  double scale() const { return alpha / static_cast<double>(rank); }
  // From train options lora_rank / lora_alpha / lora_layers (rank 0: no adapters) and seed.
  static LoraSettings from(const Options& options);
};

class LoraAdaptersImpl : public torch::nn::Module {
 public:
  // One adapter per adapted Linear of `network` (same device and dtype).
  LoraAdaptersImpl(torch::nn::Module& network, const LoraSettings& settings);

  // Points each adapted layer of `network` (of the same layout as the one
  // the adapters were made for) at W0 + scale B A, and freezes W0. Call
  // before every forward whose gradient should reach A and B.
  void attach(torch::nn::Module& network);
  // W0 <- W0 + scale B A, the layers' weights back on their parameters, W0
  // trainable again.
  void merge(torch::nn::Module& network);

  const LoraSettings& settings() const { return settings_; }
  const std::vector<std::string>& layer_names() const { return names_; }
  const std::vector<std::string>& table_names() const { return table_names_; }
  long trainable_count();

 private:
  // The adapted layers of `network`, looked up once per network (attach()
  // runs every training step).
  const std::vector<torch::nn::LinearImpl*>& layers_of(torch::nn::Module& network);

  LoraSettings settings_;
  std::vector<std::string> names_;
  torch::nn::Module* cached_network_ = nullptr;
  std::vector<torch::nn::LinearImpl*> cached_layers_;
  std::vector<Tensor> a_, b_;  // per layer: (r, in), (out, r)
  std::vector<std::string> table_names_;
  std::vector<torch::nn::EmbeddingImpl*> cached_tables_;
  std::vector<Tensor> deltas_;  // per condition table: (levels + 1, D)
};
TORCH_MODULE(LoraAdapters);

// `task` (a denoiser task on `network` with EMA network `ema`) made to train
// only `adapters` (their EMA in `average`): the adapters are attached to
// `network` before every loss. Nothing is merged: call merge_adapters()
// after run_training().
TrainingTask adapter_task(TrainingTask task, torch::nn::Module& network, LoraAdaptersImpl& adapters,
                          LoraAdaptersImpl& average);
// The trained adapters into `network`, their average into `ema`.
void merge_adapters(torch::nn::Module& network, torch::nn::Module& ema, LoraAdaptersImpl& adapters,
                    LoraAdaptersImpl& average);

}  // namespace exprflow
