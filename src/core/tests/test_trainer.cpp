// Train stage: learning-rate schedule, EMA, and the shared training loop on
// a tiny linear-regression task.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "train/ema.hpp"
#include "train/lr_schedule.hpp"
#include "train/optimiser.hpp"
#include "train/trainer.hpp"

using namespace exprflow;

TEST(WarmupCosine, Values) {
  WarmupCosine lr{1e-3, 10, 110, 0.1};
  // Linear warm-up: (step + 1) / warmup * peak.
  EXPECT_DOUBLE_EQ(lr.at(0), 1e-4);
  EXPECT_DOUBLE_EQ(lr.at(4), 5e-4);
  EXPECT_DOUBLE_EQ(lr.at(9), 1e-3);
  for (long s = 1; s < 10; ++s) EXPECT_GT(lr.at(s), lr.at(s - 1)) << "warm-up not increasing at " << s;
  // Peak right after the warm-up, then a cosine down to peak * min_ratio.
  EXPECT_DOUBLE_EQ(lr.at(10), 1e-3);
  // Decay over steps 10..109 (99 intervals): half-way is step 10 + 49.5.
  EXPECT_NEAR(0.5 * (lr.at(59) + lr.at(60)), 1e-3 * (0.1 + 0.9 * 0.5), 1e-6) << "half-way through the decay";
  for (long s = 11; s <= 109; ++s) EXPECT_LT(lr.at(s), lr.at(s - 1)) << "decay not decreasing at " << s;
  // The last step of training (total - 1) is exactly the floor.
  EXPECT_NEAR(lr.at(109), 1e-4, 1e-15) << "last step should be peak * min_ratio";
  EXPECT_NEAR(lr.at(1000), 1e-4, 1e-15) << "beyond the end: stays at the floor";

  WarmupCosine no_warmup{2e-3, 0, 50, 0.0};
  EXPECT_DOUBLE_EQ(no_warmup.at(0), 2e-3);
  EXPECT_NEAR(no_warmup.at(49), 0.0, 1e-18);
}

TEST(ParameterEma, WarmUpFormula) {
  torch::nn::Linear source(3, 2), average(3, 2);
  ParameterEma ema(*source, *average, 0.9);
  ema.copy_source_to_average();
  for (size_t i = 0; i < source->parameters().size(); ++i) {
    EXPECT_TRUE(at::equal(source->parameters()[i], average->parameters()[i]));
  }
  torch::NoGradGuard no_grad;
  // average = 0, source = 1: after update(step) average = 1 - d(step).
  for (auto& p : average->parameters()) p.zero_();
  for (auto& p : source->parameters()) p.fill_(1.0);
  ema.update(0);  // d = min(0.9, 1/10) = 0.1
  for (auto& p : average->parameters()) EXPECT_TRUE(at::allclose(p, at::full_like(p, 0.9)));
  for (auto& p : average->parameters()) p.zero_();
  ema.update(5);  // d = min(0.9, 6/15) = 0.4
  for (auto& p : average->parameters()) EXPECT_TRUE(at::allclose(p, at::full_like(p, 0.6)));
  for (auto& p : average->parameters()) p.zero_();
  ema.update(1000);  // d = min(0.9, 1001/1010) = 0.9
  for (auto& p : average->parameters()) EXPECT_TRUE(at::allclose(p, at::full_like(p, 0.1)));
  // The source is untouched.
  for (auto& p : source->parameters()) EXPECT_TRUE(at::all(p == 1).item<bool>());

  torch::nn::Linear no_bias(torch::nn::LinearOptions(3, 2).bias(false));
  EXPECT_THROW({ ParameterEma bad(*source, *no_bias, 0.9); }, std::logic_error);
}

TEST(ParameterEma, SnapshotAndRestore) {
  torch::nn::Linear m(3, 2);
  std::vector<Tensor> snap = snapshot_parameters(*m);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.add_(1.0);
  }
  EXPECT_FALSE(at::equal(m->weight, snap[0])) << "snapshot shares storage with the parameters";
  restore_parameters(*m, snap);
  EXPECT_TRUE(at::equal(m->weight, snap[0]));
  EXPECT_TRUE(at::equal(m->bias, snap[1]));
}

namespace {

// y = X w + 0.5 + noise over 200 "cells".
struct Regression {
  Tensor x, y;
  torch::nn::Linear model{nullptr}, ema{nullptr};

  Regression() {
    at::manual_seed(11);
    x = at::randn({200, 4});
    y = at::matmul(x, at::tensor(std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}).view({4, 1})) + 0.5 +
        0.01 * at::randn({200, 1});
    model = torch::nn::Linear(4, 1);
    ema = torch::nn::Linear(4, 1);
  }

  Tensor rows(const std::vector<int>& cells) const {
    std::vector<int64_t> idx(cells.begin(), cells.end());
    return at::tensor(idx);
  }

  TrainingTask task() {
    TrainingTask t;
    t.module = model.ptr().get();
    t.ema = ema.ptr().get();
    t.batch_loss = [this](const std::vector<int>& cells, at::Generator&) {
      Tensor idx = rows(cells);
      return (model->forward(x.index_select(0, idx)) - y.index_select(0, idx)).pow(2).mean();
    };
    t.validation_loss = [this](const std::vector<int>& cells) {
      torch::NoGradGuard no_grad;
      Tensor idx = rows(cells);
      return (model->forward(x.index_select(0, idx)) - y.index_select(0, idx)).pow(2).mean().item<double>();
    };
    return t;
  }
};

std::vector<int> range(int lo, int hi) {
  std::vector<int> v;
  for (int i = lo; i < hi; ++i) v.push_back(i);
  return v;
}

TrainerSettings quick(long epochs) {
  TrainerSettings s;
  s.epochs = epochs;
  s.batch_size = 32;
  s.learning_rate = 0.05;
  s.weight_decay = 0.0;
  s.warmup_fraction = 0.1;
  s.ema_decay = 0.9;
  s.patience = 0;
  s.seed = 3;
  return s;
}

}  // namespace

TEST(RunTraining, LowersTheLossAndReportsHistory) {
  Regression r;
  const std::vector<int> train = range(0, 160), validation = range(160, 200);
  long steps_seen = 0, last_total = 0;
  int epochs_seen = 0;
  TrainCallbacks cb;
  cb.on_step = [&](long step, long total, double loss) {
    EXPECT_EQ(step, steps_seen + 1) << "steps must count up from 1";
    EXPECT_TRUE(std::isfinite(loss));
    steps_seen = step;
    last_total = total;
    return true;
  };
  cb.on_epoch = [&](const EpochRecord& rec) { EXPECT_EQ(rec.epoch, ++epochs_seen); };

  const double before = r.task().validation_loss(validation);
  TrainReport rep = run_training(r.task(), train, validation, quick(30), cb);
  ASSERT_EQ(rep.history.size(), 30u);
  EXPECT_FALSE(rep.interrupted);
  EXPECT_FALSE(rep.stopped_early);
  EXPECT_EQ(rep.steps, 30 * 5) << "160 cells / batch 32 = 5 steps per epoch";
  EXPECT_EQ(steps_seen, rep.steps);
  EXPECT_EQ(last_total, 150);
  EXPECT_EQ(epochs_seen, 30);
  for (size_t i = 0; i < rep.history.size(); ++i) {
    EXPECT_EQ(rep.history[i].epoch, static_cast<int>(i + 1));
    EXPECT_TRUE(std::isfinite(rep.history[i].validation_loss));
    EXPECT_GT(rep.history[i].learning_rate, 0.0);
    EXPECT_GE(rep.history[i].seconds, 0.0);
  }
  EXPECT_LT(rep.history.back().train_loss, 0.1 * rep.history.front().train_loss)
      << "training loss did not fall: " << rep.history.front().train_loss << " -> " << rep.history.back().train_loss;
  const double after = r.task().validation_loss(validation);
  EXPECT_LT(after, 0.01 * before) << "validation loss " << before << " -> " << after;
  EXPECT_LT(after, 0.05);
  EXPECT_GE(rep.best_epoch, 1);
  EXPECT_LE(rep.best_epoch, 30);
  // The last epoch's learning rate is at the floor of the cosine (peak * 0.1).
  EXPECT_NEAR(rep.history.back().learning_rate, 0.005, 1e-4);
  // The EMA copy followed the model (decay 0.9 over 150 steps).
  EXPECT_TRUE(at::allclose(r.ema->weight, r.model->weight, 0.0, 0.05))
      << r.ema->weight << " vs " << r.model->weight;
  // No validation cells: NaN validation losses, training still runs.
  Regression r2;
  TrainReport rep2 = run_training(r2.task(), range(0, 200), {}, quick(3), {});
  ASSERT_EQ(rep2.history.size(), 3u);
  EXPECT_TRUE(std::isnan(rep2.history[0].validation_loss));
  EXPECT_EQ(rep2.best_epoch, 3);
}

TEST(RunTraining, SameSeedSameResult) {
  Regression a, b;
  run_training(a.task(), range(0, 160), range(160, 200), quick(3), {});
  run_training(b.task(), range(0, 160), range(160, 200), quick(3), {});
  EXPECT_TRUE(at::equal(a.model->weight, b.model->weight));
  EXPECT_TRUE(at::equal(a.ema->weight, b.ema->weight));
}

TEST(RunTraining, EarlyStoppingRestoresBestEpoch) {
  Regression r;
  TrainingTask task = r.task();
  // A validation loss that is best at epoch 2 and worse afterwards.
  int calls = 0;
  task.validation_loss = [&calls](const std::vector<int>&) {
    ++calls;
    return calls == 2 ? 1.0 : 2.0 + calls;
  };
  std::vector<Tensor> params_at_2;
  TrainCallbacks cb;
  cb.on_epoch = [&](const EpochRecord& rec) {
    if (rec.epoch == 2) params_at_2 = snapshot_parameters(*r.model);
  };
  TrainerSettings s = quick(50);
  s.patience = 3;
  TrainReport rep = run_training(task, range(0, 160), range(160, 200), s, cb);
  EXPECT_TRUE(rep.stopped_early);
  EXPECT_FALSE(rep.interrupted);
  EXPECT_EQ(rep.best_epoch, 2);
  EXPECT_EQ(rep.history.size(), 5u) << "epochs 3, 4, 5 without improvement with patience 3";
  EXPECT_EQ(rep.steps, 5 * 5);
  ASSERT_EQ(params_at_2.size(), 2u);
  EXPECT_TRUE(at::equal(r.model->weight, params_at_2[0])) << "best epoch's weights not restored";
  EXPECT_TRUE(at::equal(r.model->bias, params_at_2[1]));
}

TEST(RunTraining, OnStepFalseInterrupts) {
  Regression r;
  TrainCallbacks cb;
  cb.on_step = [](long step, long, double) { return step < 7; };  // false at step 7
  int epochs = 0;
  cb.on_epoch = [&](const EpochRecord&) { ++epochs; };
  TrainReport rep = run_training(r.task(), range(0, 160), range(160, 200), quick(100), cb);
  EXPECT_TRUE(rep.interrupted);
  EXPECT_FALSE(rep.stopped_early);
  EXPECT_EQ(rep.steps, 7);
  // Epoch 1 (5 steps) complete, epoch 2 partial (2 steps) with no validation.
  ASSERT_EQ(rep.history.size(), 2u);
  EXPECT_EQ(epochs, 2);
  EXPECT_TRUE(std::isfinite(rep.history[0].validation_loss));
  EXPECT_TRUE(std::isnan(rep.history[1].validation_loss));
  EXPECT_TRUE(std::isfinite(rep.history[1].train_loss));
  EXPECT_EQ(rep.best_epoch, 1);
}

TEST(RunTraining, Errors) {
  Regression r;
  EXPECT_THROW(run_training(r.task(), {}, range(0, 10), quick(1), {}), std::invalid_argument);
  // A diverging loss is reported, not silently trained on.
  TrainingTask bad = r.task();
  bad.batch_loss = [&r](const std::vector<int>&, at::Generator&) {
    return r.model->weight.sum() * std::numeric_limits<float>::quiet_NaN();
  };
  EXPECT_THROW(run_training(bad, range(0, 50), {}, quick(1), {}), std::runtime_error);

  Options o;
  o.set("epochs", 0);
  EXPECT_THROW(TrainerSettings::from(o), std::invalid_argument);
  Options o2;
  o2.set("ema_decay", 1.0);
  EXPECT_THROW(TrainerSettings::from(o2), std::invalid_argument);
  Options o3;
  o3.set("epochs", 7).set("batch_size", 16).set("patience", 2).set("seed", 99);
  const TrainerSettings s = TrainerSettings::from(o3);
  EXPECT_EQ(s.epochs, 7);
  EXPECT_EQ(s.batch_size, 16);
  EXPECT_EQ(s.patience, 2);
  EXPECT_EQ(s.seed, 99u);
  EXPECT_EQ(s.learning_rate, TrainerSettings().learning_rate);
}

// The fused CPU AdamW and the multi-tensor one against LibTorch's, their
// reference: the same weights after every step (the multi-tensor one, the
// same ops on the CPU, to the bit), with a learning rate that changes between
// steps, weight decay, and a parameter that gets no gradient.
TEST(FusedAdamW, MatchesLibTorchsAdamW) {
  using Make = std::unique_ptr<Optimiser> (*)(std::vector<Tensor>, const AdamWSettings&);
  for (const auto& [name, make] : std::vector<std::pair<std::string, Make>>{{"fused", make_fused_cpu_adamw},
                                                                            {"foreach", make_foreach_adamw}}) {
    at::manual_seed(8);
    const std::vector<std::vector<int64_t>> shapes = {{37, 19}, {19}, {70000}, {3, 4, 5}};
    std::vector<Tensor> fast_params, reference_params;
    for (const auto& shape : shapes) {
      Tensor p = at::randn(shape);
      fast_params.push_back(p.clone().set_requires_grad(true));
      reference_params.push_back(p.clone().set_requires_grad(true));
    }
    AdamWSettings settings;
    settings.learning_rate = 3e-3;
    settings.weight_decay = 0.05;
    auto fast = make(fast_params, settings);
    auto reference = make_libtorch_adamw(reference_params, settings);
    for (int step = 0; step < 6; ++step) {
      fast->zero_grad();
      reference->zero_grad();
      fast->set_learning_rate(settings.learning_rate / (1 + step));
      reference->set_learning_rate(settings.learning_rate / (1 + step));
      for (size_t i = 0; i + 1 < shapes.size(); ++i) {  // the last parameter never has a gradient
        const Tensor g = at::randn(shapes[i]) * (step + 1);
        fast_params[i].mutable_grad() = g.clone();
        reference_params[i].mutable_grad() = g.clone();
      }
      fast->step();
      reference->step();
      for (size_t i = 0; i < shapes.size(); ++i) {
        const bool same = name == "foreach" ? at::equal(fast_params[i], reference_params[i])
                                            : at::allclose(fast_params[i], reference_params[i], 1e-5, 1e-7);
        EXPECT_TRUE(same) << name << ": parameter " << i << " after step " << step << ": max difference "
                          << (fast_params[i] - reference_params[i]).abs().max().item<float>();
      }
    }
    EXPECT_TRUE(at::equal(fast_params.back(), reference_params.back())) << name;  // untouched without a gradient
    // Its state carries over to LibTorch's: one more step from it is the reference's.
    EXPECT_EQ(fast->state().steps, reference->state().steps) << name;
    auto resumed = make_libtorch_adamw(fast_params, settings);
    resumed->load_state(fast->state());
    resumed->set_learning_rate(1e-3);
    reference->set_learning_rate(1e-3);
    for (size_t i = 0; i + 1 < shapes.size(); ++i) {
      const Tensor g = at::randn(shapes[i]);
      fast_params[i].mutable_grad() = g.clone();
      reference_params[i].mutable_grad() = g.clone();
    }
    resumed->step();
    reference->step();
    for (size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_TRUE(at::allclose(fast_params[i], reference_params[i], 1e-5, 1e-7)) << name << ": parameter " << i;
    }
  }
}

TEST(FusedAdamW, TakesFloatCpuParametersAndMakeAdamwFallsBack) {
  std::vector<Tensor> doubles = {at::zeros({3}, at::kDouble).set_requires_grad(true)};
  EXPECT_THROW(make_fused_cpu_adamw(doubles, AdamWSettings()), std::invalid_argument);
  EXPECT_NO_THROW(make_adamw(doubles, AdamWSettings()));  // LibTorch's then
}
