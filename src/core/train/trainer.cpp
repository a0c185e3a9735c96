#include "train/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/utils/clip_grad.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "train/ema.hpp"
#include "train/lr_schedule.hpp"
#include "train/optimiser.hpp"

namespace exprflow {

TrainerSettings TrainerSettings::from(const Options& o) {
  TrainerSettings s;
  s.epochs = o.integer("epochs", s.epochs);
  s.batch_size = o.integer("batch_size", s.batch_size);
  s.learning_rate = o.number("learning_rate", s.learning_rate);
  s.weight_decay = o.number("weight_decay", s.weight_decay);
  s.warmup_fraction = o.number("warmup_fraction", s.warmup_fraction);
  s.min_lr_ratio = o.number("min_lr_ratio", s.min_lr_ratio);
  s.grad_clip = o.number("grad_clip", s.grad_clip);
  s.ema_decay = o.number("ema_decay", s.ema_decay);
  s.patience = o.integer("patience", s.patience);
  s.seed = static_cast<uint64_t>(o.integer("seed", static_cast<long>(s.seed)));
  if (s.epochs < 1) throw std::invalid_argument("epochs must be at least 1");
  if (s.batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  if (!(s.learning_rate > 0)) throw std::invalid_argument("learning_rate must be positive");
  if (s.ema_decay < 0 || s.ema_decay >= 1) throw std::invalid_argument("ema_decay must be in [0, 1)");
  if (s.warmup_fraction < 0 || s.warmup_fraction >= 1) {
    throw std::invalid_argument("warmup_fraction must be in [0, 1)");
  }
  return s;
}


TrainReport run_training(const TrainingTask& task, const std::vector<int>& train_cells,
                         const std::vector<int>& validation_cells, const TrainerSettings& s,
                         const TrainCallbacks& callbacks) {
  if (train_cells.empty()) throw std::invalid_argument("no cells to train on");
  torch::nn::Module& module = *task.module;
  std::vector<Tensor> params = module.parameters();
  AdamWSettings adamw;
  adamw.learning_rate = s.learning_rate;
  adamw.weight_decay = s.weight_decay;
  const std::unique_ptr<Optimiser> optimiser = make_adamw(params, adamw);  // fused on the CPU

  const long steps_per_epoch = (static_cast<long>(train_cells.size()) + s.batch_size - 1) / s.batch_size;
  WarmupCosine lr{s.learning_rate, static_cast<long>(s.warmup_fraction * steps_per_epoch * s.epochs),
                  steps_per_epoch * s.epochs, s.min_lr_ratio};
  ParameterEma ema(module, *task.ema, s.ema_decay);
  ema.copy_source_to_average();

  // One generator for all training randomness (timesteps, noise, dropout of
  // conditions) and one engine for the order of cells: a seed fixes the run.
  at::Generator generator = at::detail::createCPUGenerator(s.seed);
  std::mt19937_64 shuffle_rng(s.seed ^ 0x9E3779B97F4A7C15ULL);

  TrainReport report;
  double best_validation = std::numeric_limits<double>::infinity();
  std::vector<Tensor> best_params, best_ema;
  long epochs_without_improvement = 0;
  std::vector<int> order = train_cells;

  for (long epoch = 1; epoch <= s.epochs && !report.interrupted; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    module.train();
    if (task.shuffle) {
      task.shuffle(order, shuffle_rng);
    } else {
      std::shuffle(order.begin(), order.end(), shuffle_rng);
    }
    double loss_sum = 0;
    long loss_count = 0;
    for (long b = 0; b < steps_per_epoch; ++b) {
      const size_t lo = b * s.batch_size, hi = std::min(order.size(), lo + s.batch_size);
      std::vector<int> cells(order.begin() + lo, order.begin() + hi);
      if (task.prefetch && b + 1 < steps_per_epoch) {
        task.prefetch(std::vector<int>(order.begin() + hi,
                                       order.begin() + std::min(order.size(), hi + s.batch_size)));
      }
      optimiser->set_learning_rate(lr.at(report.steps));
      optimiser->zero_grad();
      Tensor loss = task.batch_loss(cells, generator);
      loss.backward();
      if (s.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, s.grad_clip);
      optimiser->step();
      ema.update(report.steps);
      ++report.steps;
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        throw std::runtime_error("training diverged (non-finite loss at step " +
                                 std::to_string(report.steps) + "); lower learning_rate");
      }
      loss_sum += value * cells.size();
      loss_count += cells.size();
      if (callbacks.on_step && !callbacks.on_step(report.steps, steps_per_epoch * s.epochs, value)) {
        report.interrupted = true;
        break;
      }
    }
    if (report.interrupted && loss_count == 0) break;

    EpochRecord record;
    record.epoch = static_cast<int>(epoch);
    record.train_loss = loss_sum / loss_count;
    record.learning_rate = lr.at(report.steps - 1);
    record.validation_loss = std::numeric_limits<double>::quiet_NaN();
    if (!validation_cells.empty() && !report.interrupted) {
      module.eval();
      record.validation_loss = task.validation_loss(validation_cells);
    }
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.history.push_back(record);
    if (callbacks.on_epoch) callbacks.on_epoch(record);

    if (std::isfinite(record.validation_loss)) {
      if (record.validation_loss < best_validation) {
        best_validation = record.validation_loss;
        report.best_epoch = record.epoch;
        epochs_without_improvement = 0;
        if (s.patience > 0) {
          best_params = snapshot_parameters(module);
          best_ema = snapshot_parameters(*task.ema);
        }
      } else if (s.patience > 0 && ++epochs_without_improvement >= s.patience) {
        report.stopped_early = true;
        break;
      }
    }
  }
  // The run ends on the weights of its best validation epoch.
  if (!best_params.empty() && report.best_epoch != report.history.back().epoch) {
    restore_parameters(module, best_params);
    restore_parameters(*task.ema, best_ema);
  }
  if (report.best_epoch == 0 && !report.history.empty()) report.best_epoch = report.history.back().epoch;
  module.eval();
  return report;
}

void append_history(std::vector<EpochRecord>& history, const TrainReport& report, const std::string& stage) {
  int epoch_offset = 0;
  for (const EpochRecord& r : history) {
    if (r.stage == stage) epoch_offset = r.epoch;
  }
  for (EpochRecord record : report.history) {
    record.stage = stage;
    record.epoch += epoch_offset;
    history.push_back(record);
  }
}

}  // namespace exprflow
