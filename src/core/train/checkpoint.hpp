// Checkpoints of a training run. A TrainerState is where the run stands
// between two optimiser steps: weights, EMA weights, optimiser moments, the
// random generator's and the shuffling engine's states, the cells' order,
// the history and the early-stopping bookkeeping. A checkpoint file holds it
// beside the model's own file bytes (whatever the model fitted before its
// networks trained: scaling, library sizes, an earlier stage's weights) and
// the name of the stage that was training, so that a run resumed from it
// takes exactly the steps an uninterrupted run with the same seed takes and
// ends on the same weights, bit for bit on the CPU.
//
// The file is a model file (io/model_archive.hpp) of format
// "exprflow-checkpoint", written to a temporary file and renamed over the
// last one: a crash while writing leaves the previous checkpoint whole.
// A data-parallel run writes one file, from rank 0, holding every rank's
// generator states; it resumes on the same number of processes.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "exprflow/api.hpp"
#include "exprflow/torch_prelude.hpp"
#include "io/json.hpp"
#include "train/optimiser.hpp"

namespace exprflow {

struct TrainerSettings;

struct TrainerState {
  long epoch = 1;          // the epoch in progress (batch > 0) or the next one (batch == 0)
  long batch = 0;          // the next minibatch of that epoch
  std::vector<int> order;  // the cells' order: that epoch's when batch > 0, else the previous one's
  double loss_sum = 0;     // the epoch's training loss so far, summed over its cells
  long loss_count = 0;
  double epoch_seconds = 0;  // time the epoch has taken so far
  TrainReport report;        // history, steps taken, best epoch, stopped early
  double best_validation = std::numeric_limits<double>::infinity();
  long epochs_without_improvement = 0;
  std::vector<Tensor> params, ema;             // CPU copies, in module.parameters() order
  std::vector<Tensor> best_params, best_ema;  // the best epoch's (empty: none kept)
  OptimiserState optimiser;
  // One entry per rank, in rank order (one for a run in one process): every
  // other part of the state is the same on every rank of a data-parallel
  // run, but each rank draws its own noise.
  std::vector<Tensor> generators;  // (S,) uint8 each: the training generator's state
  // (S,) uint8 each: LibTorch's default CPU generator's, which dropout layers
  // draw from (on a CUDA device they draw from the device's: a resumed run
  // there is the same run only to dropout's randomness).
  std::vector<Tensor> global_generators;
  std::string shuffle_engine;   // the std::mt19937_64 that orders cells, as operator<< writes it
  Json settings;                // trainer_settings_json() of the run
};

// The settings a resumed run must share with the run it continues (all but
// how often it checkpoints).
Json trainer_settings_json(const TrainerSettings& settings);
// Throws std::invalid_argument naming the first setting that differs.
void check_same_settings(const Json& stored, const TrainerSettings& settings);

struct Checkpoint {
  std::string model_bytes;  // the model's file bytes when the checkpoint was written
  std::string stage;        // EpochRecord::stage of the run that was training
  TrainerState state;
};

void write_checkpoint(const std::string& path, const std::string& model_bytes, const std::string& stage,
                      const TrainerState& state);
// Throws std::invalid_argument / std::runtime_error naming the file and what is wrong with it.
Checkpoint read_checkpoint(const std::string& path);

// The checkpoint options of a training call (GenerativeModel::default_train_options):
//   checkpoint        a file to write checkpoints to ("" none)
//   checkpoint_every  epochs between checkpoints (a run also writes one when it
//                     is interrupted and when it ends)
//   resume            a checkpoint file to continue from ("" none)
struct CheckpointOptions {
  std::string path;
  std::string resume;
  static CheckpointOptions from(const Options& options);
};

}  // namespace exprflow
