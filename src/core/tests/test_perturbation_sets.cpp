// Perturbation sets ("A+B", a control level, doses): member embeddings that
// add up, a monotone dose response that is zero at dose 0, combinations never
// seen in training asked for as extra levels, and the additive latent shift
// that moves control cells to such a combination.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "api/model_inputs.hpp"
#include "condition/perturbation_condition.hpp"
#include "data/expression_source.hpp"
#include "control_block_mean.hpp"
#include "error_message.hpp"
#include "exprflow/api.hpp"

using namespace exprflow;

namespace {

Covariate targets() {
  Covariate c{"target", {"ctrl", "A", "B", "C"}};
  c.perturbation_set = true;
  c.control = "ctrl";
  return c;
}

Tensor longs(std::vector<int64_t> v, std::vector<int64_t> shape) {
  return at::tensor(v, at::TensorOptions().dtype(at::kLong)).view(shape);
}

}  // namespace

TEST(PerturbationSets, LevelsSplitIntoMembers) {
  Covariate c = targets();
  c.levels.push_back("A+C");
  EXPECT_EQ(perturbation_members(c, "A+C"), (std::vector<std::string>{"A", "C"}));
  EXPECT_TRUE(perturbation_members(c, "ctrl").empty());
  EXPECT_EQ(perturbation_member_names(c), (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(level_member_indices(c, {"B+A", "ctrl"}), (std::vector<std::vector<int64_t>>{{1, 0}, {}}));
  EXPECT_TRUE(mentions(error_of([&] { level_member_indices(c, {"A+D"}); }), "'D'"));
}

TEST(PerturbationSets, BadCovariatesAreRefusedByName) {
  Covariate no_control = targets();
  no_control.control = "none";
  EXPECT_TRUE(mentions(error_of([&] { check_covariates({no_control}); }), "no level 'none'"));
  Covariate twice = targets();
  twice.levels.push_back("A+A");
  EXPECT_TRUE(mentions(error_of([&] { check_covariates({twice}); }), "names 'A' twice"));
  Covariate slash = targets();
  slash.name = "a/b";
  EXPECT_TRUE(mentions(error_of([&] { check_covariates({slash}); }), "'/'"));
  Covariate dosed_type{"type", {"x"}};
  dosed_type.dosed = true;
  EXPECT_TRUE(mentions(error_of([&] { check_covariates({dosed_type}); }), "not a perturbation"));
}

// The vector of A+B is the control vector plus A's and B's contributions, so
// a combination is asked for without having been seen; code -1 is null.
TEST(PerturbationSets, MemberEmbeddingsAddUp) {
  const std::vector<CovariateSpec> specs = covariate_specs({targets()});
  PerturbationCondition condition(specs[0].n_members, specs[0].level_members, 8, false, 1.0);
  const Tensor codes = longs({0, 1, 2, 4, -1}, {5});  // ctrl, A, B, (extra) A+B, null
  const Tensor members = longs({-1, -1, 0, -1, 1, -1, 0, 1, 0, 1}, {5, 2});
  const Tensor v = condition->forward(codes, members, Tensor());  // (5, 8)
  EXPECT_TRUE(at::allclose(v[3] - v[0], (v[1] - v[0]) + (v[2] - v[0]), 1e-5, 1e-6));
  EXPECT_FALSE(at::allclose(v[4], v[3]));
  // Without members the level table gives the same vectors for the model's levels.
  const Tensor from_table = condition->forward(longs({0, 1, 2}, {3}), Tensor(), Tensor());
  EXPECT_TRUE(at::allclose(from_table, v.slice(0, 0, 3)));
  // A null cell's vector does not depend on what its members say.
  const Tensor other = condition->forward(longs({-1}, {1}), longs({2, 0}, {1, 2}), Tensor());
  EXPECT_TRUE(at::allclose(other[0], v[4]));
}

TEST(PerturbationSets, DoseResponseIsMonotoneAndZeroAtZero) {
  const std::vector<CovariateSpec> specs = covariate_specs({targets()});
  PerturbationCondition condition(specs[0].n_members, specs[0].level_members, 8, true, 10.0);
  const Tensor members = longs({0, 0, 0, 0, -1}, {5, 1});
  const Tensor doses = at::tensor({0.0f, 1.0f, 10.0f, 100.0f, 50.0f}).view({5, 1});
  const Tensor r = condition->dose_response(members, doses).flatten();
  EXPECT_EQ(r[0].item<float>(), 0.0f);
  EXPECT_LT(r[1].item<float>(), r[2].item<float>());
  EXPECT_LT(r[2].item<float>(), r[3].item<float>());
  EXPECT_NEAR(r[2].item<float>(), 0.5, 1e-5);  // the half dose starts at the dose scale
  EXPECT_EQ(r[4].item<float>(), 0.0f);          // an empty slot
  // Dose 0 is the control vector itself, and the gradient through it is finite.
  const Tensor codes = longs({1, 0}, {2});
  const Tensor v = condition->forward(codes, longs({0, -1}, {2, 1}), at::zeros({2, 1}));
  EXPECT_TRUE(at::allclose(v[0], v[1]));
  const Tensor some = condition->forward(longs({1, 1}, {2}), longs({0, 0}, {2, 1}), at::tensor({0.0f, 3.0f}).view({2, 1}));
  some.sum().backward();
  for (const Tensor& p : condition->parameters()) {
    if (p.grad().defined()) EXPECT_TRUE(at::isfinite(p.grad()).all().item<bool>());
  }
}

TEST(PerturbationSets, ColumnsTakeExtraLevelsAndDoses) {
  Covariate c = targets();
  c.dosed = true;
  CellCovariates cells(CovariateCodes{{"target", {0, 1, 4, -1}}});
  cells.extra_levels["target"] = {"A+B"};
  EXPECT_TRUE(mentions(error_of([&] { covariate_columns(CellCovariates(CovariateCodes{{"target", {0, 1, 4, -1}}}), 4, {c}); }),
                       "outside its 4 levels"));
  cells.doses["target"] = CellDoses{2, {0, 0, 5, 0, 2, 3, 0, 0}};
  const CovariateColumns columns = covariate_columns(cells, 4, {c});
  const SetColumn& set = columns.sets.at("target");
  EXPECT_EQ(set.width, 2);
  EXPECT_EQ(set.members, (std::vector<int>{-1, -1, 0, -1, 0, 1, -1, -1}));
  EXPECT_EQ(set.doses, (std::vector<float>{1, 1, 5, 1, 2, 3, 1, 1}));
  cells.extra_levels["target"] = {"A+Z"};
  EXPECT_TRUE(mentions(error_of([&] { covariate_columns(cells, 4, {c}); }), "'Z'"));
  cells.extra_levels["target"] = {"A+B"};
  cells.doses["target"] = CellDoses{1, {0, 1, 2, 0}};
  EXPECT_TRUE(mentions(error_of([&] { covariate_columns(cells, 4, {c}); }), "has 2 members"));
  cells.doses["target"] = CellDoses{1, {0, 1, -2, 0, 1}};
  EXPECT_TRUE(mentions(error_of([&] { covariate_columns(cells, 4, {c}); }), "need 4 cells"));
}

// Cells of ctrl, A (genes 0-3 four-fold) and B (genes 4-7 four-fold) among
// 72 more genes (so that a block barely moves the others' proportions); A+B
// is never seen.
// The VAE's additive latent shift moves control cells to A+B: both blocks go
// up, as far as each does alone; gene-space flows generate A+B from the sum
// of the member embeddings; a saved model keeps the perturbation covariate.
TEST(PerturbationSets, UnseenCombinationFromItsMembers) {
  constexpr int G = 80, per = 120;
  std::mt19937_64 rng(7);
  const auto proportions = [](bool a, bool b) {
    std::vector<double> w(G, 2.0);
    for (int g = 0; g < 4; ++g) w[g] = a ? 8 : 2;
    for (int g = 4; g < 8; ++g) w[g] = b ? 8 : 2;
    double total = 0;
    for (double x : w) total += x;
    for (double& x : w) x /= total;
    return w;
  };
  std::vector<double> counts;
  CovariateCodes codes;
  for (int i = 0; i < 3 * per; ++i) {
    const int level = i % 3;  // ctrl, A, B
    codes["target"].push_back(level);
    for (double p : proportions(level == 1, level == 2)) counts.push_back(std::poisson_distribution<int>(4000 * p)(rng));
  }
  std::vector<std::string> genes;
  for (int g = 0; g < G; ++g) genes.push_back("g" + std::to_string(g));
  DenseExpressionSource source(genes, 3 * per, counts.data());
  Covariate target{"target", {"ctrl", "A", "B"}};
  target.perturbation_set = true;
  target.control = "ctrl";

  Options spec;
  spec.set("architecture", "vae").set("seed", 1).set("latent_dim", 8).set("vae_hidden", 64);
  auto model = GenerativeModel::create_with_covariates(spec, genes, {target});
  model->train(source, codes, Options().set("epochs", 60).set("batch_size", 32).set("learning_rate", 3e-3).set("seed", 2), {});

  const auto block = [&](const GeneratedCells& cells, int lo, int hi) {
    return control_block_mean(cells, codes["target"], lo, hi);
  };
  CellCovariates to_ab(CovariateCodes{{"target", std::vector<int>(3 * per, 3)}});
  to_ab.extra_levels["target"] = {"A+B"};
  CellCovariates to_a(CovariateCodes{{"target", std::vector<int>(3 * per, 1)}});
  const Options shift = Options().set("transfer", "shift").set("seed", 3);
  const GeneratedCells kept = model->transfer(source, codes, codes, shift);
  const GeneratedCells a = model->transfer(source, codes, to_a, shift);
  const GeneratedCells ab = model->transfer(source, codes, to_ab, shift);
  // In the data: A's block +1.25 log in A cells (the others -0.14), each
  // block +1.12 in A+B cells.
  const double a_up = block(a, 0, 4) - block(kept, 0, 4);
  EXPECT_GT(a_up, 0.5);
  EXPECT_LT(std::abs(block(a, 4, 8) - block(kept, 4, 8)), 0.4);
  EXPECT_GT(block(ab, 0, 4) - block(kept, 0, 4), 0.5 * a_up);
  EXPECT_GT(block(ab, 4, 8) - block(kept, 4, 8), 0.5 * a_up);

  const auto loaded = GenerativeModel::load_bytes(model->to_bytes());
  ASSERT_EQ(loaded->covariates().size(), 1u);
  EXPECT_TRUE(loaded->covariates()[0].perturbation_set);
  EXPECT_EQ(loaded->covariates()[0].control, "ctrl");
  EXPECT_EQ(loaded->transfer(source, codes, to_ab, shift).counts, ab.counts);

  // A member no level has alone cannot be shifted to additively.
  Covariate pairs_only{"target", {"ctrl", "A+B"}};
  pairs_only.perturbation_set = true;
  pairs_only.control = "ctrl";
  auto pairs = GenerativeModel::create_with_covariates(spec, genes, {pairs_only});
  CovariateCodes two;
  for (int i = 0; i < 3 * per; ++i) two["target"].push_back(i % 2);
  pairs->train(source, two, Options().set("epochs", 1).set("seed", 2), {});
  CellCovariates to_a_alone(CovariateCodes{{"target", std::vector<int>(3 * per, 2)}});
  to_a_alone.extra_levels["target"] = {"A"};
  EXPECT_TRUE(mentions(error_of([&] { pairs->transfer(source, two, to_a_alone, shift); }), "'A' has no training cells"));
}

// A gene-space flow generates an extra combination from its members'
// embeddings; the same doses give the same cells, other doses other cells.
TEST(PerturbationSets, GeneSpaceModelGeneratesExtraLevels) {
  Covariate target = targets();
  target.dosed = true;
  Options spec;
  spec.set("architecture", "state_mlp").set("seed", 1);
  std::vector<std::string> genes{"g0", "g1", "g2", "g3"};
  auto model = GenerativeModel::create_with_covariates(spec, genes, {target});
  std::vector<double> counts;
  CovariateCodes codes;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 64; ++i) {
    codes["target"].push_back(i % 4);
    for (int g = 0; g < 4; ++g) counts.push_back(std::poisson_distribution<int>(50)(rng));
  }
  DenseExpressionSource source(genes, 64, counts.data());
  CellCovariates train_cells(codes);
  train_cells.doses["target"] = CellDoses{1, std::vector<float>(64, 10.0f)};
  model->train(source, train_cells, Options().set("epochs", 2).set("seed", 2), {});
  CellCovariates ask(CovariateCodes{{"target", {4, 4, 0}}});
  ask.extra_levels["target"] = {"A+C"};
  ask.doses["target"] = CellDoses{2, {10, 1, 10, 1, 0, 0}};
  const GeneratedCells one = model->generate(ask, Options().set("steps", 4).set("seed", 5));
  const GeneratedCells two = model->generate(ask, Options().set("steps", 4).set("seed", 5));
  EXPECT_EQ(one.n_cells, 3);
  EXPECT_EQ(one.counts, two.counts);
  // Other doses give other cells, except to the control cell (it has no member).
  ask.doses["target"] = CellDoses{2, {100, 100, 100, 100, 0, 0}};
  const GeneratedCells dosed = model->generate(ask, Options().set("steps", 4).set("seed", 5));
  const auto cell = [](const GeneratedCells& c, int i) {  // the sample itself (counts round small changes away)
    return std::vector<float>(c.logcounts.begin() + i * c.n_genes, c.logcounts.begin() + (i + 1) * c.n_genes);
  };
  EXPECT_NE(cell(dosed, 0), cell(one, 0));
  EXPECT_EQ(cell(dosed, 2), cell(one, 2));
}
