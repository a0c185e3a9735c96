// The training loop shared by every model: minibatches over a cell split,
// AdamW, warm-up + cosine learning rate, gradient-norm clipping, EMA weights,
// a validation loss per epoch, early stopping with the best epoch restored,
// and a per-step callback through which the front end reports progress and
// stops the run (user interrupt), leaving a usable model. A run can write
// checkpoints and be resumed from one (train/checkpoint.hpp).
#pragma once

#include <functional>
#include <random>
#include <vector>

#include "exprflow/api.hpp"
#include "exprflow/torch_prelude.hpp"
#include "runtime/matmul_precision.hpp"
#include "train/checkpoint.hpp"

namespace exprflow {

class DataParallelGroup;

struct TrainerSettings {
  long epochs = 100;
  long batch_size = 128;
  double learning_rate = 1e-4;
  double weight_decay = 0.01;
  double warmup_fraction = 0.05;  // of all steps
  double min_lr_ratio = 0.1;
  double grad_clip = 1.0;         // max global L2 norm; <= 0 disables
  double ema_decay = 0.999;
  long patience = 10;             // epochs without improvement; <= 0 disables
  uint64_t seed = 1;
  long checkpoint_every = 1;      // epochs between checkpoints (when the task writes them)
  // The Linear layers' and attention's matrix products during the run
  // (forward and backward): "float32", or "bfloat16" (runtime/matmul_precision.hpp).
  MatmulPrecision precision = MatmulPrecision::float32;

  static TrainerSettings from(const Options& options);
};

// What the loop optimises. The loss functions receive 0-based cell indices.
struct TrainingTask {
  torch::nn::Module* module = nullptr;  // parameters optimised
  torch::nn::Module* ema = nullptr;     // same layout; the averaged copy
  std::function<Tensor(const std::vector<int>& cells, at::Generator& generator)> batch_loss;
  // Mean loss over the given cells with fixed randomness (comparable across epochs).
  std::function<double(const std::vector<int>& cells)> validation_loss;
  // Orders each epoch's cells in place (the data source's policy, e.g. block
  // shuffling for a streamed file); unset: a uniform shuffle.
  std::function<void(std::vector<int>& order, std::mt19937_64& rng)> shuffle;
  // Told the next minibatch's cells before the current one is computed, so
  // that a streamed source reads them meanwhile; unset: nothing.
  std::function<void(const std::vector<int>& cells)> prefetch;
  // Stores the run's state (e.g. write_checkpoint()): called every
  // checkpoint_every epochs, after the last epoch and when the run is
  // interrupted. Unset: no checkpoints.
  std::function<void(const TrainerState& state)> checkpoint;
  // Told the run's step number (0-based, counted over the whole run and
  // every rank alike) before each step's loss, e.g. for a KL warm-up; unset: nothing.
  std::function<void(long step)> before_step;
  // Training across processes (train/data_parallel.hpp): this process's
  // group, which must outlive the run; null: this process alone.
  DataParallelGroup* group = nullptr;
};

// With `resume` (a checkpoint's state, written by a run of the same task,
// cells and settings), continues that run where it stood: the weights it ends
// on are those of the uninterrupted run, bit for bit on the CPU.
TrainReport run_training(const TrainingTask& task, const std::vector<int>& train_cells,
                         const std::vector<int>& validation_cells, const TrainerSettings& settings,
                         const TrainCallbacks& callbacks, const TrainerState* resume = nullptr);

// Appends a run's epochs to a model's history as `stage`, numbering them on
// from that stage's last recorded epoch (fine-tuning continues the count).
void append_history(std::vector<EpochRecord>& history, const TrainReport& report,
                    const std::string& stage = "model");

}  // namespace exprflow
