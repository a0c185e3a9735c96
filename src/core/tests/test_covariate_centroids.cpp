// Latent arithmetic (transfer mode "shift"): the shift between two
// combinations of levels is the own context's difference where training cells
// hold both ends, else the balanced average over the contexts that do, else
// the pooled difference; and a VAE moves held-out cells with it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/covariate_centroids.hpp"
#include "data/expression_source.hpp"
#include "error_message.hpp"
#include "exprflow/api.hpp"

using namespace exprflow;

namespace {

// Codes of (type, stim): vector = (type offset, stim effect of the type).
// Type t's stim effect is 1 + t; type 2 has only control cells.
CovariateCentroids three_types() {
  CovariateCentroids centroids({"type", "stim"}, 2);
  for (int type = 0; type < 3; ++type) {
    for (int stim = 0; stim < 2; ++stim) {
      if (type == 2 && stim == 1) continue;
      // Cells of different counts per group: the balanced average must not weight them.
      for (int cell = 0; cell < 1 + 3 * type + stim; ++cell) {
        const float v[2] = {10.0f * type + (cell % 2 ? 0.5f : -0.5f), stim * (1.0f + type)};
        centroids.add({type, stim}, v);
      }
    }
  }
  return centroids;
}

// Four cell types (type t: genes 6t..6t+5 high) with and without a stimulus
// (genes 24-31 four-fold), 80 cells per combination, the last type never
// stimulated: the combination a model must compose.
struct FourTypes {
  static constexpr int kGenes = 32, kPer = 80, kTypes = 4, kHeldOut = kTypes - 1;
  std::vector<std::string> genes;
  std::vector<double> counts;
  CovariateCodes codes;
  std::unique_ptr<DenseExpressionSource> source;
  std::vector<Covariate> covariates() const {
    return {{"type", {"T0", "T1", "T2", "T3"}}, {"stim", {"ctrl", "stim"}}};
  }
};

const FourTypes& four_types() {
  static const FourTypes data = [] {
    FourTypes d;
    std::mt19937_64 rng(5);
    auto proportions = [](int type, int stim) {
      std::vector<double> w(FourTypes::kGenes);
      for (int g = 0; g < FourTypes::kGenes; ++g) w[g] = g < 24 ? (g / 6 == type ? 10 : 1) : (stim ? 8 : 2);
      double total = 0;
      for (double x : w) total += x;
      for (double& x : w) x /= total;
      return w;
    };
    std::vector<std::pair<int, int>> seen;
    for (int t = 0; t < FourTypes::kTypes; ++t) {
      seen.push_back({t, 0});
      if (t != FourTypes::kHeldOut) seen.push_back({t, 1});
    }
    const int n = FourTypes::kPer * static_cast<int>(seen.size());
    for (int i = 0; i < n; ++i) {
      const auto [type, stim] = seen[i % seen.size()];
      d.codes["type"].push_back(type);
      d.codes["stim"].push_back(stim);
      for (double p : proportions(type, stim)) d.counts.push_back(std::poisson_distribution<int>(2000 * p)(rng));
    }
    for (int g = 0; g < FourTypes::kGenes; ++g) d.genes.push_back("g" + std::to_string(g));
    d.source = std::make_unique<DenseExpressionSource>(d.genes, n, d.counts.data());
    return d;
  }();
  return data;
}

// Mean log expression of genes [lo, hi) over the cells `rows` marks.
double mean_log_expression(const GeneratedCells& cells, const std::vector<bool>& rows, int lo, int hi) {
  double sum = 0;
  int m = 0;
  for (int i = 0; i < cells.n_cells; ++i) {
    if (!rows[i]) continue;
    ++m;
    for (int g = lo; g < hi; ++g) sum += cells.logcounts[static_cast<size_t>(i) * cells.n_genes + g];
  }
  return sum / ((hi - lo) * static_cast<double>(m));
}

}  // namespace

TEST(CovariateCentroids, OwnContextThenBalancedContextsThenPooled) {
  const CovariateCentroids c = three_types();
  // Seen combination: its own type's effect (type 1: 2).
  EXPECT_NEAR(c.shift({1, 0}, {1, 1})[1], 2.0f, 1e-5);
  EXPECT_NEAR(c.shift({1, 1}, {1, 0})[1], -2.0f, 1e-5);
  // Unseen (2, stim): the average of types 0 and 1, each once: (1 + 2) / 2.
  EXPECT_NEAR(c.shift({2, 0}, {2, 1})[1], 1.5f, 1e-5);
  // Nothing changes: no shift.
  EXPECT_EQ(c.shift({2, 0}, {2, 0}), (std::vector<float>{0.0f, 0.0f}));
  // A change of type moves along the type axis and keeps stim.
  EXPECT_NEAR(c.shift({0, 0}, {1, 0})[1], 0.0f, 1e-5);
  // Unknown type (-1): no context, so pooled over all cells of each stim level.
  const std::vector<float> pooled = c.shift({-1, 0}, {-1, 1});
  EXPECT_GT(pooled[1], 1.0f);
  EXPECT_LT(pooled[1], 2.0f);
  // A level no cell has is named.
  CovariateCentroids only_ctrl({"type", "stim"}, 1);
  const float v = 1.0f;
  only_ctrl.add({0, 0}, &v);
  EXPECT_TRUE(mentions(error_of([&] { only_ctrl.shift({0, 0}, {0, 1}); }), "'stim'"));
  EXPECT_TRUE(mentions(error_of([&] { CovariateCentroids({"a"}, 1).shift({0}, {1}); }), "trained"));
}

// Three types whose control states lie at 0, 1 and 10 on the first axis
// respond by 1, 1 and 5 on the second; a fourth type, seen only as control
// at 9.5, borrows mostly the response of its neighbour at 10 once contexts
// are weighted by how alike they start.
TEST(CovariateCentroids, ContextsWeighByHowAlikeTheyStart) {
  CovariateCentroids c({"type", "stim"}, 2);
  const std::vector<float> position{0.0f, 1.0f, 10.0f, 9.5f}, response{1.0f, 1.0f, 5.0f, 0.0f};
  for (int t = 0; t < 4; ++t) {
    const float control[2] = {position[t], 0.0f}, stimulated[2] = {position[t], response[t]};
    c.add({t, 0}, control);
    if (t < 3) c.add({t, 1}, stimulated);
  }
  EXPECT_TRUE(std::isinf(c.context_bandwidth()));  // the default: every context alike
  EXPECT_NEAR(c.shift({3, 0}, {3, 1})[1], 7.0f / 3.0f, 1e-5);
  // Bandwidth b: h = b x the median distance between the contexts' control
  // states (1, 9 and 10: 9); weights exp(-(d^2 - d_min^2) / (2 h^2)).
  auto expected = [&](double b) {
    const double h = b * 9.0;
    double sum = 0, total = 0;
    for (int t = 0; t < 3; ++t) {
      const double d2 = (position[t] - 9.5) * (position[t] - 9.5);
      const double w = std::exp(-(d2 - 0.25) / (2 * h * h));
      sum += w * response[t];
      total += w;
    }
    return sum / total;
  };
  for (double b : {2.0, 0.5, 0.1}) {
    c.set_context_bandwidth(b);
    const std::vector<float> shift = c.shift({3, 0}, {3, 1});
    EXPECT_NEAR(shift[1], expected(b), 1e-5) << "bandwidth " << b;
    EXPECT_NEAR(shift[0], 0.0f, 1e-6);
  }
  EXPECT_NEAR(c.shift({3, 0}, {3, 1})[1], 5.0f, 1e-3);  // b = 0.1: the neighbour alone
  EXPECT_GT(expected(0.5), 7.0 / 3.0 + 1.0);
  // A seen combination keeps its own shift; back to infinity, equal weights.
  EXPECT_NEAR(c.shift({0, 0}, {0, 1})[1], 1.0f, 1e-6);
  c.set_context_bandwidth(std::numeric_limits<double>::infinity());
  EXPECT_NEAR(c.shift({3, 0}, {3, 1})[1], 7.0f / 3.0f, 1e-5);
  // A type without training cells has no starting state to compare: equal weights.
  c.set_context_bandwidth(0.5);
  EXPECT_NEAR(c.shift({4, 0}, {4, 1})[1], 7.0f / 3.0f, 1e-5);
  EXPECT_TRUE(mentions(error_of([&] { c.set_context_bandwidth(0); }), "bandwidth must be positive"));
  EXPECT_TRUE(mentions(error_of([&] { c.set_context_bandwidth(std::nan("")); }), "bandwidth must be positive"));
}

TEST(CovariateCentroids, TableRestoresTheSameShifts) {
  const CovariateCentroids c = three_types();
  CovariateCentroids back({"type", "stim"}, 2);
  back.restore(c.table());
  for (auto [from, to] : {std::make_pair(std::vector<int>{2, 0}, std::vector<int>{2, 1}),
                          std::make_pair(std::vector<int>{0, 1}, std::vector<int>{1, 0})}) {
    for (int j = 0; j < 2; ++j) EXPECT_NEAR(back.shift(from, to)[j], c.shift(from, to)[j], 1e-4);
  }
  CovariateCentroids::Table bad = c.table();
  bad.means.pop_back();
  EXPECT_TRUE(mentions(error_of([&] { back.restore(bad); }), "latent centroids"));
}

// A count VAE trained without the stimulated cells of one of four types moves
// that type's control cells towards the stimulated programme by the other
// types' balanced latent shift (scGen), and a saved model keeps the centroids.
TEST(CovariateCentroids, VaeShiftPredictsAnUnseenCombination) {
  const FourTypes& data = four_types();
  const ExpressionSource& source = *data.source;
  const CovariateCodes& codes = data.codes;
  Options spec;
  spec.set("architecture", "vae").set("seed", 1).set("latent_dim", 10).set("vae_hidden", 64);
  auto model = GenerativeModel::create_with_covariates(spec, data.genes, data.covariates());
  model->train(source, codes, Options().set("epochs", 80).set("batch_size", 32).set("learning_rate", 3e-3).set("seed", 2), {});

  CovariateCodes to_stim = codes;
  for (int& s : to_stim["stim"]) s = 1;
  // Mean log expression of genes [lo, hi) over the held-out type's control cells.
  auto held_out_mean = [&](const GeneratedCells& cells, int lo, int hi) {
    std::vector<bool> rows(cells.n_cells);
    for (int i = 0; i < cells.n_cells; ++i) rows[i] = codes.at("type")[i] == FourTypes::kHeldOut && codes.at("stim")[i] == 0;
    return mean_log_expression(cells, rows, lo, hi);
  };
  const Options shift = Options().set("transfer", "shift").set("seed", 3);
  const GeneratedCells kept = model->transfer(source, codes, codes, shift);
  const GeneratedCells moved = model->transfer(source, codes, to_stim, shift);
  // log(4) = 1.39 in the data. The decoder never decoded this type
  // stimulated, and the shift gets part of the way (0.54 here; a state_mlp's
  // joint flow for an unseen combination gets none, test_covariates.cpp).
  // The type's own programme stays.
  EXPECT_GT(held_out_mean(moved, 24, 32) - held_out_mean(kept, 24, 32), 0.3);
  EXPECT_GT(held_out_mean(moved, 18, 24), held_out_mean(moved, 0, 18) + 1.0);
  // Without the shift, the VAE (its decoder blind to the condition) changes nothing.
  const Options joint = Options().set("transfer", "joint").set("seed", 3);
  EXPECT_LT(std::abs(held_out_mean(model->transfer(source, codes, to_stim, joint), 24, 32) - held_out_mean(kept, 24, 32)), 0.1);

  const GeneratedCells again = GenerativeModel::load_bytes(model->to_bytes())->transfer(source, codes, to_stim, shift);
  EXPECT_EQ(again.counts, moved.counts);
}

TEST(CovariateCentroids, NearestSeenChangesTheLastMovableCovariateFirst) {
  const CovariateCentroids c = three_types();
  EXPECT_EQ(c.cells_of({2, 1}), 0);
  EXPECT_EQ(c.cells_of({1, 1}), 5);  // 1 + 3 + 1 cells
  // (type 2, stim) was never seen: the stimulus changes first.
  EXPECT_EQ(c.nearest_seen({2, 1}, {true, true}), (std::vector<int>{2, 0}));
  // Type alone may change: the stimulated type with the most cells.
  EXPECT_EQ(c.nearest_seen({2, 1}, {true, false}), (std::vector<int>{1, 1}));
  EXPECT_TRUE(c.nearest_seen({2, 1}, {false, false}).empty());
  EXPECT_TRUE(mentions(error_of([&] { c.nearest_seen({2, 1}, {true}); }), "nearest_seen"));
}

// generate() of a latent flow for the combination no training cell had:
// sampled at the type's control cells plus the other types' latent shift
// ("unseen" = "shift", the default) the stimulated genes rise; the type
// stays itself.
TEST(CovariateCentroids, LatentFlowGeneratesAnUnseenCombinationByTheShift) {
  const FourTypes& data = four_types();
  Options spec;
  spec.set("architecture", "latent_mlp").set("seed", 1).set("latent_dim", 10).set("vae_hidden", 64)
      .set("hidden", 64).set("n_layers", 2);
  auto model = GenerativeModel::create_with_covariates(spec, data.genes, data.covariates());
  // KL weight 1: under the latent models' default 2 this small flow, asked
  // for the combination itself, raises the stimulated genes too (0.26, the
  // shift 0.24), and the test compares the shift with a flow that does not.
  model->train(*data.source, data.codes,
               Options().set("epochs", 60).set("batch_size", 32).set("learning_rate", 3e-3).set("vae_epochs", 80)
                   .set("vae_batch_size", 32).set("vae_learning_rate", 3e-3).set("kl_weight", 1.0).set("seed", 2), {});
  const int n = 200;
  CovariateCodes ask;
  for (int i = 0; i < n; ++i) {
    ask["type"].push_back(FourTypes::kHeldOut);
    ask["stim"].push_back(i % 2);  // control (seen), stimulated (unseen)
  }
  const GeneratedCells cells = model->generate(ask, Options().set("seed", 4));
  std::vector<bool> control(n), stimulated(n);
  for (int i = 0; i < n; ++i) (i % 2 ? stimulated : control)[i] = true;
  // The stimulated genes' rise (log(4) = 1.39 in the data): 0.26 by the
  // shift, 0.03 when the flow is asked for the combination ("joint").
  const GeneratedCells joint = model->generate(ask, Options().set("seed", 4).set("unseen", "joint"));
  auto rise = [&](const GeneratedCells& c) {
    return mean_log_expression(c, stimulated, 24, 32) - mean_log_expression(c, control, 24, 32);
  };
  EXPECT_GT(rise(cells), 0.15);
  EXPECT_GT(rise(cells), rise(joint) + 0.1);
  EXPECT_GT(mean_log_expression(cells, stimulated, 18, 24), mean_log_expression(cells, stimulated, 0, 18) + 1.0);
  // The seen combination is sampled alike both ways (the counts' draws
  // differ with the other cells' laws).
  EXPECT_NEAR(mean_log_expression(joint, control, 24, 32), mean_log_expression(cells, control, 24, 32), 0.1);
  EXPECT_TRUE(mentions(error_of([&] { model->generate(ask, Options().set("unseen", "nearest")); }), "unseen"));
}
