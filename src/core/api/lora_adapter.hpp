// LoRA fine-tuning of a model's denoising network (gene-space models' network,
// latent models' flow) and the adapter file: what a fine-tuning run learnt,
// small enough to share alone and apply to the model it was trained from.
//
//   adapter file  a model file (io/model_archive.hpp) of format
//                 "exprflow-lora-adapter": meta {rank, alpha, layers, base,
//                 history (the fine-tuning's epochs; absent in older adapters)}
//                 and tensors raw/a<i>, raw/b<i> (the trained adapters) and
//                 average/a<i>, average/b<i> (their EMA). `base` fingerprints
//                 the network and EMA weights before fine-tuning, so an
//                 adapter is applied only to the model it was trained from.
#pragma once

#include <string>
#include <string_view>

#include "io/tensor_bundle.hpp"
#include "train/lora.hpp"
#include "train/trainer.hpp"

namespace exprflow {

// Trains LoRA adapters of `network` (EMA in `ema`) with `task` (a denoiser
// task over them) and merges them in; returns the run's report and fills
// `adapter` with the adapter file's bundle. Annotates nothing.
TrainReport fine_tune_with_adapters(const TrainingTask& task, torch::nn::Module& network, torch::nn::Module& ema,
                                    const LoraSettings& settings, const std::vector<int>& train_cells,
                                    const std::vector<int>& validation_cells, const TrainerSettings& trainer,
                                    const TrainCallbacks& callbacks, TensorBundle& adapter);

// The training run of a model's denoising network: run_training(task, ...)
// with train option lora_rank 0, else fine_tune_with_adapters(), whose
// adapter then also carries the clipping box (clip_low, clip_high) and whose
// counts are merged into `annotations` (adapter_annotations()).
TrainReport train_or_adapt(const TrainingTask& task, torch::nn::Module& network, torch::nn::Module& ema,
                           const Options& options, const std::vector<int>& train_cells,
                           const std::vector<int>& validation_cells, const TrainerSettings& trainer,
                           const TrainCallbacks& callbacks, const Tensor& clip_low, const Tensor& clip_high,
                           TensorBundle& adapter, Options& annotations,
                           const TrainerState* resume = nullptr);

// The bytes of an adapter file; std::invalid_argument when `adapter` is empty
// (the model was never fine-tuned with adapters).
std::string adapter_file_bytes(const TensorBundle& adapter);
// Opens adapter file bytes, checks they were trained from `network` / `ema`
// as they are now, and merges them in. Errors name `source`.
TensorBundle apply_adapter_bytes(std::string_view bytes, const std::string& source, torch::nn::Module& network,
                                 torch::nn::Module& ema);

// apply_adapter_bytes(), the clipping box (low, high) the fine-tuning data
// widened, which the adapter carries ("clip_low", "clip_high"), and the
// fine-tuning's epochs appended to `history` as stage "lora".
TensorBundle apply_adapter_and_box(std::string_view bytes, const std::string& source, torch::nn::Module& network,
                                   torch::nn::Module& ema, Tensor& low, Tensor& high,
                                   std::vector<EpochRecord>& history);

// The last adapter inside a model file (prefix "lora_adapter/"), so that a
// saved and reloaded model can still write its adapter alone.
void write_adapter(TensorBundle& model_bundle, const TensorBundle& adapter);
TensorBundle read_adapter(const TensorBundle& model_bundle);

// Trainable (adapter) and total parameter counts of the last fine-tuning, as
// annotations: lora_rank, lora_trainable_parameters, lora_network_parameters.
Options adapter_annotations(const TensorBundle& adapter);

}  // namespace exprflow
