// Checkpoint and resume (train/checkpoint.hpp): a run interrupted and resumed
// from its checkpoint ends on the same weights, bit for bit, as the same run
// left alone; for one-stage models and for both stages of a latent model.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "error_message.hpp"
#include "exprflow/api.hpp"
#include "train/optimiser.hpp"
#include "two_programme_cells.hpp"

using namespace exprflow;

// The message `action` throws must say `part`.
#define EXPECT_THAT_ERROR(action, part)               \
  do {                                                \
    const std::string message = error_of([&] { action; }); \
    EXPECT_TRUE(mentions(message, part)) << message;  \
  } while (0)

namespace {

const TwoProgrammeCells& cells() {
  static const TwoProgrammeCells d = [] {
    TwoProgrammeSettings s;
    s.n_genes = 10;
    s.n_cells = 80;
    s.seed = 23;
    s.first_scale = 0.5;
    s.last_scale = 3.0;
    return two_programme_cells(s);
  }();
  return d;
}

Options gene_space_spec() {
  return Options().set("architecture", "latent_tokens").set("n_tokens", 2).set("token_dim", 8).set("n_layers", 1)
      .set("n_heads", 2).set("hidden", 16).set("timesteps", 50).set("seed", 5);
}

Options latent_spec() {
  return Options().set("architecture", "latent_mlp").set("seed", 3).set("latent_dim", 4).set("vae_hidden", 16)
      .set("vae_layers", 1).set("hidden", 16).set("n_layers", 1);
}

// 64 training cells in minibatches of 16: 4 steps per epoch. Patience keeps
// best-epoch snapshots, which a checkpoint must carry too.
Options training(const std::string& checkpoint = "") {
  Options o = Options().set("epochs", 4).set("batch_size", 16).set("learning_rate", 3e-3)
                  .set("validation_fraction", 0.2).set("seed", 4).set("patience", 3);
  if (!checkpoint.empty()) o.set("checkpoint", checkpoint);
  return o;
}

Options latent_training(const std::string& checkpoint = "") {
  return training(checkpoint).set("vae_epochs", 3).set("vae_batch_size", 16).set("vae_learning_rate", 3e-3)
      .set("vae_patience", 3);
}

std::string temp_path(const std::string& name) {
  const std::string path = ::testing::TempDir() + "exprflow_checkpoint_" + name;
  std::remove(path.c_str());
  return path;
}

// Callbacks that stop training at the `stop_at`-th step of stage `stage`.
TrainCallbacks stop_at(const std::string& stage, long step) {
  auto current = std::make_shared<std::string>();
  TrainCallbacks callbacks;
  callbacks.on_stage = [current](const std::string& s) { *current = s; };
  callbacks.on_step = [current, stage, step](long n, long, double) {
    return !((current->empty() ? std::string("model") : *current) == stage && n == step);
  };
  return callbacks;
}

// Everything a model's weights decide, compared exactly: its generated cells.
std::vector<float> generated(GenerativeModel& model) {
  const GeneratedCells out =
      model.generate(std::vector<int>{0, 1, 0, 1, 1, 0}, Options().set("seed", 9).set("steps", 4));
  return out.logcounts;
}

std::vector<std::string> stages_and_epochs(const GenerativeModel& model) {
  std::vector<std::string> out;
  for (const EpochRecord& r : model.history()) out.push_back(r.stage + std::to_string(r.epoch));
  return out;
}

// Trains uninterrupted; then interrupted at step `step` of `stage`, and
// resumed from its checkpoint in a model read from that checkpoint.
void expect_resume_matches(const Options& spec, const std::function<Options(const std::string&)>& options,
                           const std::string& stage, long step, const std::string& name) {
  const TwoProgrammeCells& d = cells();
  auto whole = GenerativeModel::create(spec, d.source->genes(), {"A", "B"});
  whole->train(*d.source, d.conditions, options(""), {});

  const std::string path = temp_path(name);
  auto first = GenerativeModel::create(spec, d.source->genes(), {"A", "B"});
  const TrainReport stopped = first->train(*d.source, d.conditions, options(path), stop_at(stage, step));
  ASSERT_TRUE(stopped.interrupted);
  const CheckpointInfo info = GenerativeModel::checkpoint_info(path);
  EXPECT_EQ(info.stage, stage);
  EXPECT_EQ(info.steps, step);

  auto resumed = GenerativeModel::load_checkpoint(path);
  resumed->train(*d.source, d.conditions, options(path).set("resume", path), {});
  EXPECT_TRUE(resumed->trained());
  EXPECT_EQ(stages_and_epochs(*resumed), stages_and_epochs(*whole));
  EXPECT_EQ(generated(*resumed), generated(*whole)) << name << ": the resumed run ends on other weights";
  std::remove(path.c_str());
}

}  // namespace

TEST(Checkpoint, ResumedMidEpochEndsOnTheUninterruptedWeights) {
  expect_resume_matches(gene_space_spec(), training, "model", 6, "mid_epoch");
}

TEST(Checkpoint, ResumedAtAnEpochsLastStepEndsOnTheUninterruptedWeights) {
  // Stopped after the last minibatch of epoch 2: the resumed run records that
  // epoch (with its validation loss) before it takes a step.
  expect_resume_matches(gene_space_spec(), training, "model", 8, "epoch_end");
}

TEST(Checkpoint, LatentModelResumesInEitherStage) {
  expect_resume_matches(latent_spec(), latent_training, "vae", 5, "latent_vae");
  expect_resume_matches(latent_spec(), latent_training, "latent", 10, "latent_latent");
}

TEST(Checkpoint, FinishedRunLeavesItsLastStateAndResumesToTheSameWeights) {
  const TwoProgrammeCells& d = cells();
  const std::string path = temp_path("finished");
  auto model = GenerativeModel::create(gene_space_spec(), d.source->genes(), {"A", "B"});
  model->train(*d.source, d.conditions, training(path).set("checkpoint_every", 3), {});
  const CheckpointInfo info = GenerativeModel::checkpoint_info(path);
  EXPECT_EQ(info.stage, "model");
  EXPECT_EQ(info.epoch, 4) << "the last epoch writes a checkpoint whatever checkpoint_every says";
  EXPECT_EQ(info.batch, 0);
  EXPECT_EQ(info.steps, 16);
  auto resumed = GenerativeModel::load_checkpoint(path);
  const TrainReport report = resumed->train(*d.source, d.conditions, training().set("resume", path), {});
  EXPECT_EQ(report.steps, 16) << "nothing was left to train";
  EXPECT_EQ(generated(*resumed), generated(*model));
  std::remove(path.c_str());
}

TEST(Checkpoint, ErrorsSayWhatDoesNotMatch) {
  const TwoProgrammeCells& d = cells();
  const std::string path = temp_path("errors");
  auto model = GenerativeModel::create(gene_space_spec(), d.source->genes(), {"A", "B"});
  model->train(*d.source, d.conditions, training(path), stop_at("model", 3));

  auto resumed = GenerativeModel::load_checkpoint(path);
  EXPECT_THAT_ERROR(resumed->train(*d.source, d.conditions, training().set("batch_size", 8).set("resume", path), {}),
                    "batch_size");
  // Other cells (a different split of fewer cells).
  std::vector<double> fewer(cells().counts.begin(), cells().counts.begin() + 10 * 60);
  DenseExpressionSource less(d.source->genes(), 60, fewer.data());
  EXPECT_THAT_ERROR(resumed->train(less, std::vector<int>(d.conditions.begin(), d.conditions.begin() + 60),
                                   training().set("resume", path), {}),
                    "other cells");
  // A gene-space checkpoint resumed by a latent model: its stage is not one the model has.
  auto latent = GenerativeModel::create(latent_spec(), d.source->genes(), {"A", "B"});
  EXPECT_THAT_ERROR(latent->train(*d.source, d.conditions, latent_training().set("resume", path), {}),
                    "does not have");
  // Not a checkpoint: a model file.
  const std::string model_path = temp_path("model.exprflow");
  model->save(model_path);
  EXPECT_THAT_ERROR(GenerativeModel::load_checkpoint(model_path), "not an exprflow checkpoint file");
  EXPECT_THAT_ERROR(GenerativeModel::checkpoint_info(temp_path("missing")), "missing");
  std::remove(path.c_str());
  std::remove(model_path.c_str());
}

TEST(Checkpoint, OptimiserStateRoundTripsThroughBothAdamWs) {
  // The fused and LibTorch AdamW hand over their moments and step counts: a
  // copy loaded with the state takes the same next step as the original.
  for (const bool fused : {true, false}) {
    torch::manual_seed(1);
    torch::nn::Linear a(4, 3), b(4, 3);
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
    }
    AdamWSettings s;
    auto make = fused ? make_fused_cpu_adamw : make_libtorch_adamw;
    auto opt_a = make(a->parameters(), s), opt_b = make(b->parameters(), s);
    const Tensor x = at::randn({5, 4});
    for (int step = 0; step < 3; ++step) {
      opt_a->zero_grad();
      a->forward(x).square().sum().backward();
      opt_a->step();
    }
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
    }
    const OptimiserState state = opt_a->state();
    EXPECT_EQ(state.steps, (std::vector<int64_t>{3, 3}));
    opt_b->load_state(state);
    opt_a->zero_grad();
    opt_b->zero_grad();
    a->forward(x).square().sum().backward();
    b->forward(x).square().sum().backward();
    opt_a->step();
    opt_b->step();
    for (size_t i = 0; i < a->parameters().size(); ++i) {
      EXPECT_TRUE(at::equal(a->parameters()[i], b->parameters()[i])) << (fused ? "fused" : "libtorch");
    }
    OptimiserState wrong = state;
    wrong.exp_avg[0] = at::zeros({2, 2});
    EXPECT_THROW(opt_b->load_state(wrong), std::invalid_argument);
  }
}
