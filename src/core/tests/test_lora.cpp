// LoRA fine-tuning: adapters start as the identity, train only A and B,
// merge into plain weights, move a trained model towards new data, and an
// adapter saved alone turns the original model into the fine-tuned one.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "api/model_file.hpp"
#include "data/expression_source.hpp"
#include "error_message.hpp"
#include "exprflow/api.hpp"
#include "train/lora.hpp"

using namespace exprflow;

namespace {

constexpr int kGenes = 24;

// Type t expresses genes 8t..8t+7 highly; `raised` multiplies genes 16-23 by 4.
std::vector<double> toy_counts(int n, bool raised, uint64_t seed, std::vector<int>& types) {
  std::mt19937_64 rng(seed);
  std::vector<double> counts;
  types.clear();
  for (int c = 0; c < n; ++c) {
    const int type = c % 2;
    types.push_back(type);
    std::vector<double> w(kGenes);
    double total = 0;
    for (int g = 0; g < kGenes; ++g) total += (w[g] = g / 8 == type ? 10.0 : g >= 16 ? (raised ? 8.0 : 2.0) : 1.0);
    for (int g = 0; g < kGenes; ++g) counts.push_back(std::poisson_distribution<int>(2000 * w[g] / total)(rng));
  }
  return counts;
}

std::vector<std::string> gene_names() {
  std::vector<std::string> genes;
  for (int g = 0; g < kGenes; ++g) genes.push_back("g" + std::to_string(g));
  return genes;
}

double mean_of(const GeneratedCells& cells, int lo, int hi) {
  double sum = 0;
  for (int i = 0; i < cells.n_cells; ++i) {
    for (int g = lo; g < hi; ++g) sum += cells.logcounts[static_cast<size_t>(i) * kGenes + g];
  }
  return sum / (static_cast<double>(cells.n_cells) * (hi - lo));
}

}  // namespace

TEST(LoraAdapters, StartAsTheIdentityAndMergeTheLowRankUpdate) {
  torch::manual_seed(1);
  torch::nn::Sequential network(torch::nn::Linear(6, 5), torch::nn::Linear(5, 4));
  const Tensor x = torch::randn({3, 6});
  const Tensor before = network->forward(x).detach().clone();
  LoraSettings settings;
  settings.rank = 2;
  settings.alpha = 4;
  LoraAdapters adapters(*network, settings);
  // Two layers (no "backbone" module: all Linear layers), r (in + out) each.
  EXPECT_EQ(adapters->layer_names().size(), 2u);
  EXPECT_EQ(adapters->trainable_count(), 2 * (6 + 5) + 2 * (5 + 4));
  adapters->attach(*network);
  EXPECT_TRUE(torch::equal(network->forward(x), before));  // B = 0
  // Gradients reach A and B only.
  for (Tensor& p : network->parameters()) p.set_requires_grad(false);
  network->forward(x).sum().backward();
  for (const Tensor& p : adapters->parameters()) EXPECT_TRUE(p.grad().defined());
  // merge(): W0 + (alpha / r) B A, with the layer back on its own parameter.
  {
    torch::NoGradGuard no_grad;
    for (Tensor& p : adapters->parameters()) p.normal_();
  }
  adapters->attach(*network);
  const Tensor attached = network->forward(x).detach().clone();
  adapters->merge(*network);
  EXPECT_TRUE(torch::allclose(network->forward(x), attached, 1e-5, 1e-5));
  auto* first = (*network)[0]->as<torch::nn::Linear>();
  EXPECT_TRUE(first->weight.is_same(first->named_parameters(false)["weight"]));
  settings.rank = 0;
  EXPECT_TRUE(mentions(error_of([&] { LoraAdapters bad(*network, settings); }), "lora_rank"));
}

namespace {

// The base of the fine-tuning tests: a small state_mlp of two types (untrained).
Options base_spec() {
  return Options().set("architecture", "state_mlp").set("seed", 2).set("hidden", 64).set("n_layers", 2);
}
Options base_training() {
  return Options().set("epochs", 40).set("batch_size", 32).set("learning_rate", 3e-3).set("seed", 2);
}

}  // namespace

TEST(Lora, FineTuningMovesAModelToNewDataAndItsAdapterReplaysIt) {
  std::vector<int> types;
  const std::vector<double> base_counts = toy_counts(300, false, 3, types);
  DenseExpressionSource base(gene_names(), 300, base_counts.data());
  const Options spec = base_spec(), train = base_training();
  auto model = GenerativeModel::create_with_covariates(spec, gene_names(), {{"type", {"T0", "T1"}}});
  CellCovariates base_types{types};
  EXPECT_TRUE(mentions(error_of([&] {
    auto fresh = GenerativeModel::create_with_covariates(spec, gene_names(), {{"type", {"T0", "T1"}}});
    fresh->train(base, base_types, Options(train).set("lora_rank", 4), {});
  }), "needs a trained model"));
  model->train(base, base_types, train, {});
  const std::string original = model->to_bytes();
  const Options sample = Options().set("seed", 4).set("steps", 20);
  const std::vector<int> asked(200, 0);
  const double raised_before = mean_of(model->generate(asked, sample), 16, 24);

  // New data: genes 16-23 four-fold in every cell.
  std::vector<int> new_types;
  const std::vector<double> new_counts = toy_counts(300, true, 5, new_types);
  DenseExpressionSource fresh(gene_names(), 300, new_counts.data());
  model->train(fresh, CellCovariates{new_types}, Options(train).set("lora_rank", 4).set("epochs", 30).set("learning_rate", 1e-2).set("ema_decay", 0.99), {});
  const GeneratedCells tuned = model->generate(asked, sample);
  EXPECT_GT(mean_of(tuned, 16, 24), raised_before + 0.5);
  EXPECT_GT(mean_of(tuned, 0, 8), mean_of(tuned, 8, 16) + 1.0);  // the type's programme stays
  const Options& notes = model->annotations();
  EXPECT_EQ(notes.number("lora_rank"), 4.0);
  EXPECT_GT(notes.number("lora_trainable_parameters"), 0.0);
  EXPECT_LT(notes.number("lora_trainable_parameters"), 0.5 * notes.number("lora_network_parameters"));
  EXPECT_EQ(model->history().back().stage, "lora");

  // The adapter alone turns the original model into the fine-tuned one, and
  // survives a save and load of the fine-tuned model.
  auto replayed = GenerativeModel::load_bytes(original);
  replayed->apply_adapter(model->adapter_bytes(), "adapter");
  EXPECT_EQ(replayed->generate(asked, sample).counts, tuned.counts);
  auto reloaded = GenerativeModel::load_bytes(model->to_bytes());
  EXPECT_EQ(reloaded->adapter_bytes(), model->adapter_bytes());
  // ... and only to that model as it was.
  EXPECT_TRUE(mentions(error_of([&] { reloaded->apply_adapter(model->adapter_bytes(), "adapter.lora"); }),
                       "'adapter.lora' adapts another model"));
  EXPECT_TRUE(mentions(error_of([&] { GenerativeModel::load_bytes(original)->adapter_bytes(); }), "no LoRA adapter"));
}

// Latent models adapt their flow (the VAE stays as it was); the "vae" has none.
TEST(Lora, LatentModelsAdaptTheirFlow) {
  std::vector<int> types, new_types;
  const std::vector<double> base_counts = toy_counts(200, false, 3, types);
  const std::vector<double> new_counts = toy_counts(200, true, 5, new_types);
  DenseExpressionSource base(gene_names(), 200, base_counts.data()), fresh(gene_names(), 200, new_counts.data());
  Options spec;
  spec.set("architecture", "latent_mlp").set("seed", 2).set("hidden", 32).set("n_layers", 1).set("latent_dim", 4)
      .set("vae_hidden", 32);
  auto model = GenerativeModel::create_with_covariates(spec, gene_names(), {{"type", {"T0", "T1"}}});
  const Options train = Options().set("epochs", 3).set("vae_epochs", 3).set("batch_size", 32).set("seed", 2);
  model->train(base, CellCovariates{types}, train, {});
  const std::string original = model->to_bytes();
  model->train(fresh, CellCovariates{new_types}, Options(train).set("lora_rank", 2), {});
  EXPECT_EQ(model->history().back().stage, "lora");
  const Options sample = Options().set("seed", 4).set("steps", 10);
  auto replayed = GenerativeModel::load_bytes(original);
  replayed->apply_adapter(model->adapter_bytes(), "adapter");
  EXPECT_EQ(replayed->generate(std::vector<int>(20, 1), sample).counts,
            model->generate(std::vector<int>(20, 1), sample).counts);

  Options vae_spec;
  vae_spec.set("architecture", "vae").set("seed", 2).set("latent_dim", 4).set("vae_hidden", 32);
  auto vae = GenerativeModel::create_with_covariates(vae_spec, gene_names(), {{"type", {"T0", "T1"}}});
  const Options vae_train = Options().set("epochs", 3).set("batch_size", 32).set("seed", 2);
  vae->train(base, CellCovariates{types}, vae_train, {});
  EXPECT_TRUE(mentions(error_of([&] { vae->train(fresh, CellCovariates{new_types}, Options(vae_train).set("lora_rank", 2), {}); }),
                       "the 'vae' has none"));
}

// A level the base model never saw: with_levels() adds its rows (starting as
// the unconditional embedding) and LoRA fine-tuning on its cells learns it,
// through the condition tables' updates, while the old levels keep their
// programmes.
TEST(Lora, NewLevelsLearnTheirEmbedding) {
  std::vector<int> types;
  const std::vector<double> base_counts = toy_counts(300, false, 3, types);
  DenseExpressionSource base(gene_names(), 300, base_counts.data());
  const Options train = base_training();
  auto model = GenerativeModel::create_with_covariates(base_spec(), gene_names(), {{"type", {"T0", "T1"}}});
  model->train(base, CellCovariates{types}, train, {});

  EXPECT_TRUE(mentions(error_of([&] { model->with_levels({{"type", {"T1", "T0", "T2"}}}); }),
                       "must start with the model's"));
  EXPECT_TRUE(mentions(error_of([&] { model->with_levels({{"kind", {"T0", "T1", "T2"}}}); }), "'type'"));
  auto grown = model->with_levels({{"type", {"T0", "T1", "T2"}}});
  ASSERT_EQ(grown->covariates()[0].levels.size(), 3u);
  const Options sample = Options().set("seed", 4).set("steps", 20);
  EXPECT_EQ(grown->generate(std::vector<int>(50, 2), sample).counts,
            grown->generate(std::vector<int>(50, -1), sample).counts);
  EXPECT_EQ(grown->generate(std::vector<int>(50, 0), sample).counts,
            model->generate(std::vector<int>(50, 0), sample).counts);

  // The new type (genes 16-23 high), beside the old types' cells: fine-tuned
  // on the new type alone, the network drifts and T0 loses its programme
  // (block 4.7 against 5.8 for the other genes).
  std::mt19937_64 rng(9);
  std::vector<double> new_counts = base_counts;
  std::vector<int> new_types = types;
  for (int c = 0; c < 200; ++c) {
    for (int g = 0; g < kGenes; ++g) new_counts.push_back(std::poisson_distribution<int>(g >= 16 ? 300 : 30)(rng));
    new_types.push_back(2);
  }
  DenseExpressionSource fresh(gene_names(), 500, new_counts.data());
  const std::string before = grown->to_bytes();
  grown->train(fresh, CellCovariates{new_types},
               Options(train).set("lora_rank", 4).set("epochs", 30).set("learning_rate", 1e-2).set("ema_decay", 0.99), {});
  const GeneratedCells t2 = grown->generate(std::vector<int>(100, 2), sample);
  EXPECT_GT(mean_of(t2, 16, 24), mean_of(t2, 0, 16) + 1.0);
  const GeneratedCells t0 = grown->generate(std::vector<int>(100, 0), sample);
  EXPECT_GT(mean_of(t0, 0, 8), mean_of(t0, 8, 24) + 1.0);
  // The adapter (condition tables included) replays on the grown model.
  auto replayed = GenerativeModel::load_bytes(before);
  replayed->apply_adapter(grown->adapter_bytes(), "adapter");
  EXPECT_EQ(replayed->generate(std::vector<int>(100, 2), sample).counts, t2.counts);
}
