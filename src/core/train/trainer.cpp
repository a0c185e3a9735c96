#include "train/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/utils/clip_grad.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>

#include "exprflow/memory.hpp"
#include "train/data_parallel.hpp"
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
  s.checkpoint_every = o.integer("checkpoint_every", s.checkpoint_every);
  s.precision = matmul_precision_of(o, s.precision);
  if (s.epochs < 1) throw std::invalid_argument("epochs must be at least 1");
  if (s.batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  if (s.checkpoint_every < 1) throw std::invalid_argument("checkpoint_every must be at least 1");
  if (!(s.learning_rate > 0)) throw std::invalid_argument("learning_rate must be positive");
  if (s.ema_decay < 0 || s.ema_decay >= 1) throw std::invalid_argument("ema_decay must be in [0, 1)");
  if (s.warmup_fraction < 0 || s.warmup_fraction >= 1) {
    throw std::invalid_argument("warmup_fraction must be in [0, 1)");
  }
  return s;
}


namespace {

std::string engine_text(const std::mt19937_64& engine) {
  std::ostringstream out;
  out << engine;
  return out.str();
}

void restore_engine(std::mt19937_64& engine, const std::string& text) {
  std::istringstream in(text);
  in >> engine;
  if (in.fail()) throw std::invalid_argument("the checkpoint's shuffling state is unreadable");
}

Tensor generator_state(at::Generator generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(at::Generator generator, const Tensor& state) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

void check_resumable(const TrainerState& state, const std::vector<Tensor>& params,
                     const std::vector<int>& train_cells, const TrainerSettings& settings, int ranks) {
  check_same_settings(state.settings, settings);
  if (state.generators.size() != static_cast<size_t>(ranks)) {
    // Each rank continues its own random stream: the same run needs as many.
    const auto processes = [](size_t n) { return std::to_string(n) + (n == 1 ? " process" : " processes"); };
    throw std::invalid_argument("the checkpoint's run trained on " + processes(state.generators.size()) +
                                ", this one on " + processes(ranks) + ": resume on as many as it started with");
  }
  if (state.params.size() != params.size()) {
    throw std::invalid_argument("the checkpoint holds " + std::to_string(state.params.size()) +
                                " parameters, the model has " + std::to_string(params.size()));
  }
  std::vector<int> stored = state.order, now = train_cells;
  std::sort(stored.begin(), stored.end());
  std::sort(now.begin(), now.end());
  if (stored != now) {
    throw std::invalid_argument("the checkpoint's run trained on other cells: resume with the data it started with");
  }
}

}  // namespace

TrainReport run_training(const TrainingTask& task, const std::vector<int>& train_cells,
                         const std::vector<int>& validation_cells, const TrainerSettings& s,
                         const TrainCallbacks& callbacks, const TrainerState* resume) {
  if (train_cells.empty()) throw std::invalid_argument("no cells to train on");
  // Every product of the run's steps and validation losses; autograd's
  // backward products take the types the forward cast to.
  const MatmulPrecisionGuard precision(s.precision);
  const HeapHeldForRun heap_held;  // each step reuses the last one's pages
  torch::nn::Module& module = *task.module;
  std::vector<Tensor> params = module.parameters();
  AdamWSettings adamw;
  adamw.learning_rate = s.learning_rate;
  adamw.weight_decay = s.weight_decay;
  const std::unique_ptr<Optimiser> optimiser = make_adamw(params, adamw);  // fused on the CPU

  // Data-parallel: every rank takes the same global minibatches of
  // batch_size cells per rank, and its own slice of each (train/data_parallel.hpp).
  DataParallelGroup* group = task.group;
  const int rank = group ? group->rank() : 0;
  const long global_batch = s.batch_size * (group ? group->size() : 1);
  const long steps_per_epoch = (static_cast<long>(train_cells.size()) + global_batch - 1) / global_batch;
  WarmupCosine lr{s.learning_rate, static_cast<long>(s.warmup_fraction * steps_per_epoch * s.epochs),
                  steps_per_epoch * s.epochs, s.min_lr_ratio};
  ParameterEma ema(module, *task.ema, s.ema_decay);

  // One generator for all training randomness (timesteps, noise, dropout of
  // conditions) and one engine for the order of cells: a seed fixes the run.
  // Other ranks draw their own noise (and their own dropout masks) for their cells.
  at::Generator generator = at::detail::createCPUGenerator(s.seed ^ (0xA0761D6478BD642FULL * rank));
  if (rank > 0) {
    at::Generator global = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(global.mutex());
    global.set_current_seed(s.seed ^ (0xE7037ED1A0B428DBULL * rank));
  }
  std::mt19937_64 shuffle_rng(s.seed ^ 0x9E3779B97F4A7C15ULL);

  if (group) {
    // Every rank must start where the others do: each reads the checkpoint
    // itself (e.g. from a shared file system, where a rank may see an older
    // file or none), and ranks that disagree would run different collectives.
    const std::vector<double> start = resume ? std::vector<double>{1.0, static_cast<double>(resume->epoch),
                                                                   static_cast<double>(resume->batch),
                                                                   static_cast<double>(resume->report.steps)}
                                             : std::vector<double>{0.0, 0.0, 0.0, 0.0};
    if (!same_on_every_rank(*group, start)) {
      throw std::runtime_error("data-parallel training: the ranks did not start from the same checkpoint (rank " +
                               std::to_string(rank) + (resume ? " resumes at step " +
                               std::to_string(resume->report.steps) : std::string(" starts afresh")) +
                               "): every rank must read the same checkpoint file");
    }
  }
  // Where the run stands; a checkpoint is a copy of it.
  TrainerState at;
  at.order = train_cells;
  at.settings = trainer_settings_json(s);
  if (resume) {
    check_resumable(*resume, params, train_cells, s, group ? group->size() : 1);
    at = *resume;
    restore_parameters(module, resume->params);
    restore_parameters(*task.ema, resume->ema);
    optimiser->load_state(resume->optimiser);
    set_generator_state(generator, resume->generators[rank]);
    set_generator_state(at::detail::getDefaultCPUGenerator(), resume->global_generators[rank]);
    restore_engine(shuffle_rng, resume->shuffle_engine);
    at.params.clear();  // the module holds them now
    at.ema.clear();
  } else {
    if (group) {  // every rank starts from rank 0's weights
      torch::NoGradGuard no_grad;
      std::vector<Tensor> weights;
      for (const Tensor& p : params) weights.push_back(p.detach());
      for (const Tensor& b : module.buffers()) weights.push_back(b.detach());
      group->broadcast(weights);
    }
    ema.copy_source_to_average();
  }
  TrainReport& report = at.report;
  // Every rank calls save() at the same steps (its occasions are decided
  // alike on all ranks); rank 0 writes the checkpoint with every rank's
  // generators, the rest of the state being the same on every rank.
  const auto save = [&]() {
    if (!task.checkpoint) return;
    std::vector<Tensor> generators{generator_state(generator)};
    std::vector<Tensor> global_generators{generator_state(at::detail::getDefaultCPUGenerator())};
    if (group) {
      generators = gather_bytes(*group, generators[0]);
      global_generators = gather_bytes(*group, global_generators[0]);
      if (rank != 0) return;
    }
    TrainerState copy = at;
    copy.params = snapshot_parameters(module);
    copy.ema = snapshot_parameters(*task.ema);
    for (Tensor& t : copy.params) t = t.cpu();
    for (Tensor& t : copy.ema) t = t.cpu();
    copy.optimiser = optimiser->state();
    copy.generators = std::move(generators);
    copy.global_generators = std::move(global_generators);
    copy.shuffle_engine = engine_text(shuffle_rng);
    task.checkpoint(copy);
  };

  std::vector<int>& order = at.order;
  for (; at.epoch <= s.epochs && !report.interrupted && !report.stopped_early; ++at.epoch) {
    const auto start = std::chrono::steady_clock::now();
    const double seconds_before = at.epoch_seconds;
    const auto elapsed = [&] {
      return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    module.train();
    if (at.batch == 0) {  // a resumed epoch keeps the order it was drawn with
      if (task.shuffle) {
        task.shuffle(order, shuffle_rng);
      } else {
        std::shuffle(order.begin(), order.end(), shuffle_rng);
      }
    }
    for (; at.batch < steps_per_epoch; ++at.batch) {
      const size_t lo = at.batch * global_batch, hi = std::min(order.size(), lo + global_batch);
      const auto [mine, mine_end] = rank_cells(lo, hi, s.batch_size, rank);
      std::vector<int> cells(order.begin() + mine, order.begin() + mine_end);
      if (task.prefetch && at.batch + 1 < steps_per_epoch) {
        const auto [next, next_end] =
            rank_cells(hi, std::min(order.size(), hi + global_batch), s.batch_size, rank);
        task.prefetch(std::vector<int>(order.begin() + next, order.begin() + next_end));
      }
      optimiser->set_learning_rate(lr.at(report.steps));
      optimiser->zero_grad();
      if (task.before_step) task.before_step(report.steps);
      double value = 0;  // the minibatch's mean loss
      if (!cells.empty()) {
        Tensor loss = task.batch_loss(cells, generator);
        // A rank's share of the global minibatch weights its gradient.
        (group ? loss * (static_cast<double>(cells.size()) / (hi - lo)) : loss).backward();
        value = loss.item<double>();
      }
      if (group) value = all_reduce_gradients(*group, params, value * cells.size()) / (hi - lo);
      if (s.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, s.grad_clip);
      optimiser->step();
      ema.update(report.steps);
      ++report.steps;
      if (!std::isfinite(value)) {
        throw std::runtime_error("training diverged (non-finite loss at step " +
                                 std::to_string(report.steps) + "); lower learning_rate");
      }
      at.loss_sum += value * (hi - lo);
      at.loss_count += hi - lo;
      bool stop = callbacks.on_step && !callbacks.on_step(report.steps, steps_per_epoch * s.epochs, value);
      if (group) stop = any_rank(*group, stop);  // every rank stops at the same step
      if (stop) {
        report.interrupted = true;
        ++at.batch;  // this minibatch is done: a resumed run starts at the next
        at.epoch_seconds = elapsed();
        save();
        break;
      }
    }
    if (report.interrupted) {
      if (at.loss_count == 0) break;
      // The partial epoch is recorded (without a validation loss); a resumed
      // run finishes it and records it whole.
      EpochRecord record;
      record.epoch = static_cast<int>(at.epoch);
      record.train_loss = at.loss_sum / at.loss_count;
      record.learning_rate = lr.at(report.steps - 1);
      record.validation_loss = std::numeric_limits<double>::quiet_NaN();
      record.seconds = elapsed();
      report.history.push_back(record);
      if (callbacks.on_epoch) callbacks.on_epoch(record);
      break;
    }

    EpochRecord record;
    record.epoch = static_cast<int>(at.epoch);
    record.train_loss = at.loss_sum / at.loss_count;
    record.learning_rate = lr.at(report.steps - 1);
    record.validation_loss = std::numeric_limits<double>::quiet_NaN();
    if (!validation_cells.empty()) {
      module.eval();
      if (group) {  // each rank scores its share of the validation cells
        const size_t share = (validation_cells.size() + group->size() - 1) / group->size();
        const size_t begin = std::min(validation_cells.size(), rank * share);
        const std::vector<int> part(validation_cells.begin() + begin,
                                    validation_cells.begin() + std::min(validation_cells.size(), begin + share));
        const double sum = part.empty() ? 0.0 : task.validation_loss(part) * part.size();
        record.validation_loss = all_reduce_mean(*group, sum, static_cast<double>(part.size()));
      } else {
        record.validation_loss = task.validation_loss(validation_cells);
      }
    }
    record.seconds = elapsed();
    report.history.push_back(record);
    if (callbacks.on_epoch) callbacks.on_epoch(record);
    at.batch = 0;
    at.loss_sum = 0;
    at.loss_count = 0;
    at.epoch_seconds = 0;

    if (std::isfinite(record.validation_loss)) {
      if (record.validation_loss < at.best_validation) {
        at.best_validation = record.validation_loss;
        report.best_epoch = record.epoch;
        at.epochs_without_improvement = 0;
        if (s.patience > 0) {
          at.best_params = snapshot_parameters(module);
          at.best_ema = snapshot_parameters(*task.ema);
        }
      } else if (s.patience > 0 && ++at.epochs_without_improvement >= s.patience) {
        report.stopped_early = true;
      }
    }
    if (report.stopped_early || at.epoch == s.epochs || at.epoch % s.checkpoint_every == 0) {
      ++at.epoch;  // the checkpoint's run starts at the next epoch
      save();
      --at.epoch;
    }
  }
  // The run ends on the weights of its best validation epoch.
  if (!at.best_params.empty() && !report.history.empty() &&
      report.best_epoch != report.history.back().epoch) {
    restore_parameters(module, at.best_params);
    restore_parameters(*task.ema, at.best_ema);
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
