// Data-parallel training on c10d Gloo (train/data_parallel.hpp): ranks run
// as threads of this test, meeting through a FileStore on loopback, with
// short timeouts.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <random>

#include "data/expression_source.hpp"
#include "exprflow/api.hpp"
#include "train/checkpoint.hpp"
#include "train/data_parallel.hpp"
#include "train/trainer.hpp"

using namespace exprflow;

namespace {

// y = X w + 0.5 + noise over 200 "cells"; each rank builds its own copy with
// its own initial weights (the broadcast must replace them by rank 0's).
struct Regression {
  Tensor x, y;
  torch::nn::Linear model{nullptr}, ema{nullptr};
  std::vector<int> seen;  // cells the loss was asked for

  explicit Regression(uint64_t init_seed) {
    at::Generator data = at::detail::createCPUGenerator(11);
    x = at::randn({200, 4}, data);
    y = at::matmul(x, at::tensor(std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}).view({4, 1})) + 0.5 +
        0.01 * at::randn({200, 1}, data);
    at::Generator init = at::detail::createCPUGenerator(init_seed);
    model = torch::nn::Linear(4, 1);
    ema = torch::nn::Linear(4, 1);
    torch::NoGradGuard no_grad;
    for (Tensor& p : model->parameters()) p.copy_(at::randn(p.sizes(), init));
  }

  Tensor loss_of(const std::vector<int>& cells) {
    const Tensor idx = at::tensor(std::vector<int64_t>(cells.begin(), cells.end()));
    return (model->forward(x.index_select(0, idx)) - y.index_select(0, idx)).pow(2).mean();
  }

  // The loss of inputs jittered by noise from the rank's generator: the
  // weights then depend on every rank's random stream.
  Tensor noisy_loss_of(const std::vector<int>& cells, at::Generator& generator) {
    const Tensor idx = at::tensor(std::vector<int64_t>(cells.begin(), cells.end()));
    const Tensor inputs = x.index_select(0, idx);  // (B, 4)
    return (model->forward(inputs + 0.3 * at::randn(inputs.sizes(), generator)) - y.index_select(0, idx))
        .pow(2).mean();
  }

  TrainingTask task() {
    TrainingTask t;
    t.module = model.ptr().get();
    t.ema = ema.ptr().get();
    t.batch_loss = [this](const std::vector<int>& cells, at::Generator&) {
      seen.insert(seen.end(), cells.begin(), cells.end());
      return loss_of(cells);
    };
    t.validation_loss = [this](const std::vector<int>& cells) {
      torch::NoGradGuard no_grad;
      return loss_of(cells).item<double>();
    };
    return t;
  }
};

std::vector<int> range(int lo, int hi) {
  std::vector<int> v;
  for (int i = lo; i < hi; ++i) v.push_back(i);
  return v;
}

TrainerSettings settings(long batch_size, long epochs) {
  TrainerSettings s;
  s.epochs = epochs;
  s.batch_size = batch_size;
  s.learning_rate = 0.05;
  s.weight_decay = 0.0;
  s.ema_decay = 0.9;
  s.patience = 0;
  s.seed = 3;
  return s;
}

GroupSettings group(int rank, const std::string& store, double timeout = 20) {
  GroupSettings g;
  g.rank = rank;
  g.size = 2;
  g.store = "file:" + store;
  g.timeout_seconds = timeout;
  return g;
}

std::string store_path(const std::string& name) {
  const std::string path = ::testing::TempDir() + "exprflow_store_" + name;
  std::remove(path.c_str());
  return path;
}

// Runs `body(rank)` on two threads; returns each rank's error ("" none).
std::vector<std::string> on_two_ranks(const std::function<void(int)>& body) {
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        body(rank);
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return errors;
}

}  // namespace

TEST(DataParallel, TwoRanksOfBatchBAreOneProcessOfBatch2B) {
  if (!data_parallel_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  const std::vector<int> train = range(0, 150), validation = range(150, 200);
  // 150 cells: 4 global minibatches of 2 x 20, the last one 30 cells (rank 1 gets 10).
  Regression alone(1);
  const TrainReport one = run_training(alone.task(), train, validation, settings(40, 3), {});

  const std::string store = store_path("equal");
  std::vector<std::unique_ptr<Regression>> ranks;
  ranks.push_back(std::make_unique<Regression>(1));
  ranks.push_back(std::make_unique<Regression>(2));  // other initial weights
  std::vector<TrainReport> reports(2);
  const std::vector<std::string> errors = on_two_ranks([&](int rank) {
    const auto g = join_group(group(rank, store));
    TrainingTask task = ranks[rank]->task();
    task.group = g.get();
    reports[rank] = run_training(task, train, validation, settings(20, 3), {});
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(reports[rank].steps, one.steps) << "equal step counts";
    for (size_t i = 0; i < alone.model->parameters().size(); ++i) {
      EXPECT_TRUE(at::allclose(ranks[rank]->model->parameters()[i], alone.model->parameters()[i], 1e-5, 1e-6))
          << "rank " << rank << " parameter " << i;
    }
    ASSERT_EQ(reports[rank].history.size(), one.history.size());
    for (size_t e = 0; e < one.history.size(); ++e) {
      EXPECT_NEAR(reports[rank].history[e].train_loss, one.history[e].train_loss, 1e-4);
      EXPECT_NEAR(reports[rank].history[e].validation_loss, one.history[e].validation_loss, 1e-4);
    }
  }
  // Identical parameters across ranks, bit for bit: the same all-reduced step.
  for (size_t i = 0; i < ranks[0]->model->parameters().size(); ++i) {
    EXPECT_TRUE(at::equal(ranks[0]->model->parameters()[i], ranks[1]->model->parameters()[i]));
    EXPECT_TRUE(at::equal(ranks[0]->ema->parameters()[i], ranks[1]->ema->parameters()[i]));
  }
  // Each epoch, the ranks' shards cover every training cell exactly once.
  std::vector<int> all = ranks[0]->seen;
  all.insert(all.end(), ranks[1]->seen.begin(), ranks[1]->seen.end());
  std::multiset<int> counts(all.begin(), all.end());
  for (int c : train) EXPECT_EQ(counts.count(c), 3u) << "cell " << c << " in 3 epochs";
  EXPECT_EQ(all.size(), 3 * train.size());
  std::remove(store.c_str());
}

TEST(DataParallel, AStoppedRankMakesTheOtherFailWithinTheTimeout) {
  if (!data_parallel_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  const std::string store = store_path("stopped");
  Regression a(1), b(1);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> errors = on_two_ranks([&](int rank) {
    const auto g = join_group(group(rank, store, /*timeout=*/3));
    TrainingTask task = (rank == 0 ? a : b).task();
    task.group = g.get();
    if (rank == 1) {
      const auto inner = task.batch_loss;
      long calls = 0;
      task.batch_loss = [inner, calls](const std::vector<int>& cells, at::Generator& gen) mutable {
        if (++calls == 3) throw std::runtime_error("rank 1 crashed");
        return inner(cells, gen);
      };
    }
    run_training(task, range(0, 160), {}, settings(16, 50), {});
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(errors[1], "rank 1 crashed");
  EXPECT_NE(errors[0].find("lost the group"), std::string::npos) << errors[0];
  EXPECT_LT(seconds, 15) << "rank 0 should fail within its timeout, not hang";
  std::remove(store.c_str());
}

TEST(DataParallel, SettingsAreChecked) {
  EXPECT_THROW(GroupSettings::from(Options().set("group_store", "x").set("group_rank", 0.0)
                                       .set("group_size", 2.0).set("group_timeout", 10.0)),
               std::invalid_argument);
  EXPECT_THROW(GroupSettings::from(Options().set("group_store", "file:/tmp/x").set("group_rank", 2.0)
                                       .set("group_size", 2.0).set("group_timeout", 10.0)),
               std::invalid_argument);
  const GroupSettings one = GroupSettings::from(Options().set("group_store", "").set("group_rank", 0.0)
                                                    .set("group_size", 1.0).set("group_timeout", 10.0));
  EXPECT_EQ(join_group(one), nullptr) << "one process needs no group";
  EXPECT_EQ(rank_cells(0, 30, 20, 1), (std::pair<size_t, size_t>{20, 30}));
  EXPECT_EQ(rank_cells(100, 110, 20, 1), (std::pair<size_t, size_t>{110, 110})) << "an empty share";
}

// A latent model trained by two processes' worth of ranks: both stages run
// in the group, and every rank ends on the same weights.
TEST(DataParallel, LatentModelRanksEndOnTheSameWeights) {
  if (!data_parallel_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  std::vector<double> counts(10 * 60);
  std::mt19937_64 rng(5);
  for (size_t i = 0; i < counts.size(); ++i) counts[i] = std::poisson_distribution<int>(i % 10 < 5 ? 8 : 2)(rng);
  std::vector<std::string> genes;
  for (int g = 0; g < 10; ++g) genes.push_back("g" + std::to_string(g));
  const DenseExpressionSource source(genes, 60, counts.data());
  const Options spec = Options().set("architecture", "latent_mlp").set("latent_dim", 4).set("vae_hidden", 16)
                           .set("vae_layers", 1).set("hidden", 16).set("n_layers", 1);
  const std::string store = store_path("latent");
  std::vector<std::vector<float>> generated(2);
  const std::vector<std::string> errors = on_two_ranks([&](int rank) {
    auto model = GenerativeModel::create(spec.merged(Options().set("seed", 1.0 + rank), false), genes, {});
    const Options options = Options().set("epochs", 2).set("vae_epochs", 2).set("batch_size", 8)
                                .set("vae_batch_size", 8).set("seed", 4).set("group_store", "file:" + store)
                                .set("group_rank", rank).set("group_size", 2).set("group_timeout", 20.0);
    model->train(source, {}, options, {});
    generated[rank] = model->generate(std::vector<int>(5, -1), Options().set("seed", 2).set("steps", 3)).logcounts;
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(generated[0], generated[1]);
  std::remove(store.c_str());
}

// A data-parallel run interrupted and resumed from its checkpoint ends on the
// uninterrupted run's weights, bit for bit: rank 0 writes the one file, with
// every rank's generator, and each resumed rank continues its own stream.
TEST(DataParallel, CheckpointedRanksResumeToTheUninterruptedWeights) {
  if (!data_parallel_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  const std::vector<int> train = range(0, 150), validation = range(150, 200);
  const TrainerSettings s = settings(20, 3);  // 4 global steps per epoch
  const std::string path = ::testing::TempDir() + "exprflow_store_checkpoint.exprflow";
  std::remove(path.c_str());
  std::vector<long> writes(2, 0);
  // Two ranks from their own initial weights; with `stop_at` > 0, rank 0's
  // user stops the run at that step; with `resume`, both continue it.
  std::vector<long> steps_taken(2, 0);
  const auto run = [&](const std::string& name, long stop_at, const TrainerState* resume) {
    std::vector<std::unique_ptr<Regression>> ranks;
    ranks.push_back(std::make_unique<Regression>(7));
    ranks.push_back(std::make_unique<Regression>(8));
    const std::string store = store_path(name);
    const std::vector<std::string> errors = on_two_ranks([&](int rank) {
      const auto g = join_group(group(rank, store));
      Regression& r = *ranks[rank];
      TrainingTask task = r.task();
      task.group = g.get();
      task.batch_loss = [&r](const std::vector<int>& cells, at::Generator& gen) { return r.noisy_loss_of(cells, gen); };
      task.checkpoint = [&, rank](const TrainerState& state) {
        ++writes[rank];
        write_checkpoint(path, "model bytes", "model", state);
      };
      TrainCallbacks callbacks;
      callbacks.on_step = [&, rank, stop_at](long n, long, double) {
        ++steps_taken[rank];
        return !(rank == 0 && n == stop_at);
      };
      run_training(task, train, validation, s, callbacks, resume);
    });
    EXPECT_EQ(errors, (std::vector<std::string>{"", ""})) << name;
    std::remove(store.c_str());
    return ranks;
  };
  const auto whole = run("whole", 0, nullptr);
  std::remove(path.c_str());
  writes = {0, 0};
  run("stopped", 6, nullptr);  // in epoch 2: rank 1 stops at the same step
  EXPECT_EQ(writes, (std::vector<long>{2, 0})) << "epoch 1 and the stop, written by rank 0 alone";
  const Checkpoint stopped = read_checkpoint(path);
  EXPECT_EQ(stopped.state.report.steps, 6);
  ASSERT_EQ(stopped.state.generators.size(), 2u);
  ASSERT_EQ(stopped.state.global_generators.size(), 2u);
  EXPECT_FALSE(at::equal(stopped.state.generators[0], stopped.state.generators[1])) << "each rank's own stream";

  steps_taken = {0, 0};
  const auto resumed = run("resumed", 0, &stopped.state);
  EXPECT_EQ(steps_taken, (std::vector<long>{6, 6})) << "the resumed ranks take the 12 - 6 steps left";
  for (int rank = 0; rank < 2; ++rank) {
    for (size_t i = 0; i < whole[0]->model->parameters().size(); ++i) {
      EXPECT_TRUE(at::equal(resumed[rank]->model->parameters()[i], whole[0]->model->parameters()[i]))
          << "rank " << rank << " parameter " << i;
      EXPECT_TRUE(at::equal(resumed[rank]->ema->parameters()[i], whole[0]->ema->parameters()[i]));
    }
  }
  // One process cannot continue two ranks' streams.
  Regression alone(7);
  TrainingTask task = alone.task();
  try {
    run_training(task, train, validation, s, {}, &stopped.state);
    ADD_FAILURE() << "resumed on one process";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("trained on 2 processes, this one on 1 process"), std::string::npos)
        << e.what();
  }
  std::remove(path.c_str());
}
