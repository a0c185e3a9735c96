// Stand-ins for perturbation targets no training cell has
// (data/coexpression_stand_ins.hpp): the trained targets whose genes share
// the unseen target's co-expression partners, or its terms (gene sets,
// network neighbours), and the latent shift to such a target through them.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "data/coexpression_stand_ins.hpp"
#include "data/expression_source.hpp"
#include "control_block_mean.hpp"
#include "error_message.hpp"
#include "exprflow/api.hpp"

using namespace exprflow;

namespace {

// Log expression of `n` cells: genes 0-4 follow one hidden factor, genes
// 5-9 another, genes 10-11 neither (noise only).
Tensor two_modules(int n, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  const Tensor f1 = at::randn({n, 1}, g), f2 = at::randn({n, 1}, g);
  const Tensor noise = 0.5 * at::randn({n, 12}, g);
  return at::cat({f1.expand({n, 5}), f2.expand({n, 5}), at::zeros({n, 2})}, 1) + noise;  // (n, 12)
}

}  // namespace

TEST(CoexpressionStandIns, ModuleMatesStandInWeightedBySimilarity) {
  const Tensor x = two_modules(500, 3);
  const Tensor s = coexpression_similarity(x, 0, {1, 2, 6, 10});
  EXPECT_GT(s[0].item<double>(), 0.8) << "gene 1 shares gene 0's partners";
  EXPECT_GT(s[1].item<double>(), 0.8);
  EXPECT_LT(s[2].item<double>(), 0.0) << "gene 6 belongs to the other module";
  // Candidates (gene, level): the two module mates stand in, most alike first.
  const std::vector<StandIn> in = coexpression_stand_ins(x, 0, {{6, 1}, {1, 2}, {2, 3}, {10, 4}}, 3);
  ASSERT_GE(in.size(), 2u);
  EXPECT_TRUE((in[0].level == 2 || in[0].level == 3) && (in[1].level == 2 || in[1].level == 3));
  double total = 0;
  for (const StandIn& stand_in : in) {
    EXPECT_NE(stand_in.level, 1) << "no weight to the other module";
    total += stand_in.weight;
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
  // No alike candidate: the average of all of them.
  const std::vector<StandIn> none = coexpression_stand_ins(x, 0, {{6, 1}, {7, 5}}, 3);
  ASSERT_EQ(none.size(), 2u);
  EXPECT_DOUBLE_EQ(none[0].weight, 0.5);
  EXPECT_TRUE(coexpression_stand_ins(x, 0, {}, 3).empty());
}

// Knocking out g0 or g1 (module 1) raises genes 12-15; knocking out g5
// (module 2) raises genes 16-19. g2, never knocked out but co-expressed with
// g0 and g1, is predicted through them: genes 12-15 up, 16-19 not.
TEST(CoexpressionStandIns, UnseenTargetIsShiftedLikeItsModuleMates) {
  constexpr int G = 40, per = 150;
  const std::vector<std::string> levels{"ctrl", "g0", "g1", "g5"};
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  std::vector<double> counts;
  CovariateCodes codes;
  for (int i = 0; i < 4 * per; ++i) {
    const int level = i % 4;
    codes["target"].push_back(level);
    const double f1 = normal(rng), f2 = normal(rng);
    for (int g = 0; g < G; ++g) {
      double rate = 20;
      if (g < 5) rate *= std::exp(0.7 * f1);
      if (g >= 5 && g < 10) rate *= std::exp(0.7 * f2);
      if ((level == 1 || level == 2) && g >= 12 && g < 16) rate *= 4;
      if (level == 3 && g >= 16 && g < 20) rate *= 4;
      counts.push_back(std::poisson_distribution<int>(rate)(rng));
    }
  }
  std::vector<std::string> genes;
  for (int g = 0; g < G; ++g) genes.push_back("g" + std::to_string(g));
  DenseExpressionSource source(genes, 4 * per, counts.data());
  Covariate target{"target", levels};
  target.perturbation_set = true;
  target.control = "ctrl";
  auto model = GenerativeModel::create_with_covariates(
      Options().set("architecture", "vae").set("seed", 1).set("latent_dim", 8).set("vae_hidden", 64), genes, {target});
  model->train(source, codes, Options().set("epochs", 60).set("batch_size", 32).set("learning_rate", 3e-3).set("seed", 2),
               {});

  const auto block = [&](const GeneratedCells& cells, int lo, int hi) {
    return control_block_mean(cells, codes["target"], lo, hi);
  };
  const Options shift = Options().set("transfer", "shift").set("seed", 3);
  const auto to = [&](const std::string& level) {
    CellCovariates c(CovariateCodes{{"target", std::vector<int>(4 * per, 4)}});
    c.extra_levels["target"] = {level};
    return c;
  };
  const GeneratedCells kept = model->transfer(source, codes, codes, shift);
  CellCovariates to_g0(CovariateCodes{{"target", std::vector<int>(4 * per, 1)}});
  const double g0_up = block(model->transfer(source, codes, to_g0, shift), 12, 16) - block(kept, 12, 16);
  ASSERT_GT(g0_up, 0.5);
  const GeneratedCells g2 = model->transfer(source, codes, to("g2"), shift);
  EXPECT_GT(block(g2, 12, 16) - block(kept, 12, 16), 0.6 * g0_up) << "g2 acts like its module mates g0 and g1";
  EXPECT_LT(block(g2, 16, 20) - block(kept, 16, 20), 0.25 * g0_up) << "and not like g5";
  // A member that is not a measured gene has no stand-ins; other modes
  // cannot embed an unseen member.
  EXPECT_TRUE(mentions(error_of([&] { model->transfer(source, codes, to("drugX"), shift); }),
                       "'drugX' has no training cells"));
  EXPECT_TRUE(mentions(error_of([&] { model->transfer(source, codes, to("g2"), Options().set("transfer", "joint")); }),
                       "not a member any of its training levels has"));
  // With shared terms, a target that is no measured gene has stand-ins: drugX
  // shares its pathway with g5 only, so it moves as g5 does.
  Options by_terms = shift;
  by_terms.set("stand_in_genes", {"g0", "g1", "g5", "drugX", "drugX"})
      .set("stand_in_terms", {"pathway A", "pathway A", "pathway B", "pathway B", "pathway C"});
  const GeneratedCells drug = model->transfer(source, codes, to("drugX"), by_terms);
  CellCovariates to_g5(CovariateCodes{{"target", std::vector<int>(4 * per, 3)}});
  const double g5_up = block(model->transfer(source, codes, to_g5, shift), 16, 20) - block(kept, 16, 20);
  EXPECT_GT(block(drug, 16, 20) - block(kept, 16, 20), 0.8 * g5_up) << "drugX acts like g5, its pathway mate";
  EXPECT_LT(block(drug, 12, 16) - block(kept, 12, 16), 0.25 * g0_up) << "and not like g0 or g1";
  // Blended with the trained targets' average. Weight 0: the average of
  // g0's, g1's and g5's shifts, whatever knowledge chose the candidates (the
  // terms name all three). Weight chosen by leaving each trained target out:
  // g0 and g1 predict each other, so the stand-ins keep most of the weight
  // and g2 still moves like g0 and g1.
  Options average = shift;
  average.set("stand_in_weight", 0.0);
  const GeneratedCells g2_average = model->transfer(source, codes, to("g2"), average);
  Options average_by_terms = by_terms;
  average_by_terms.set("stand_in_weight", 0.0);
  EXPECT_EQ(model->transfer(source, codes, to("drugX"), average_by_terms).counts, g2_average.counts);
  Options validated = shift;
  validated.set("stand_in_weight", -1.0);
  const GeneratedCells g2_validated = model->transfer(source, codes, to("g2"), validated);
  EXPECT_NE(g2_validated.counts, g2_average.counts);
  EXPECT_GT(block(g2_validated, 12, 16) - block(kept, 12, 16), 0.6 * g0_up);
  EXPECT_LT(block(g2_validated, 16, 20) - block(kept, 16, 20), 0.25 * g0_up);
  validated.set("stand_in_weight", 1.5);
  EXPECT_TRUE(mentions(error_of([&] { model->transfer(source, codes, to("g2"), validated); }),
                       "stand_in_weight must be in [0, 1]"));
  by_terms.set("stand_in_terms", {"pathway A"});
  EXPECT_TRUE(mentions(error_of([&] { model->transfer(source, codes, to("drugX"), by_terms); }),
                       "must pair up, got 5 genes and 1 terms"));
}

TEST(SharedTermStandIns, JaccardOfTermsWeighsTheStandIns) {
  // STAT1 {ifng, jak-stat} and IRF1 {ifng, jak-stat, tnf}: Jaccard 2/3;
  // and JAK2 {jak-stat, epo, il6}: 1/4; and CD86 {b7}: 0.
  const GeneTerms terms =
      gene_terms_of({"STAT1", "STAT1", "IRF1", "IRF1", "IRF1", "JAK2", "JAK2", "JAK2", "CD86"},
                    {"ifng", "jak-stat", "ifng", "jak-stat", "tnf", "jak-stat", "epo", "il6", "b7"});
  const std::vector<StandIn> in = shared_term_stand_ins(terms, "STAT1", {{"CD86", 4}, {"JAK2", 3}, {"IRF1", 2}}, 3);
  ASSERT_EQ(in.size(), 2u) << "CD86 shares nothing";
  EXPECT_EQ(in[0].level, 2);
  EXPECT_EQ(in[1].level, 3);
  const double irf1 = 2.0 / 3.0, jak2 = 1.0 / 4.0;
  EXPECT_NEAR(in[0].weight, irf1 / (irf1 + jak2), 1e-12);
  EXPECT_NEAR(in[1].weight, jak2 / (irf1 + jak2), 1e-12);
  // k bounds the stand-ins; a gene with no terms gets every candidate equally.
  EXPECT_EQ(shared_term_stand_ins(terms, "STAT1", {{"JAK2", 3}, {"IRF1", 2}}, 1).size(), 1u);
  const std::vector<StandIn> unknown = shared_term_stand_ins(terms, "TNFRSF14", {{"JAK2", 3}, {"IRF1", 2}}, 3);
  ASSERT_EQ(unknown.size(), 2u);
  EXPECT_DOUBLE_EQ(unknown[0].weight, 0.5);
  EXPECT_TRUE(shared_term_stand_ins(terms, "STAT1", {}, 3).empty());
}

TEST(StandInWeight, LeavingTrainedTargetsOutWeighsStandInsAgainstTheAverage) {
  // Two pairs of twins: (0, 1) and (2, 3) share their shifts.
  const std::vector<std::vector<float>> shifts{{1, 0}, {1, 0}, {0, 1}, {0, 1}};
  const auto stand_in = [](int level) { return std::vector<StandIn>{{level, 1.0}}; };
  // Each twin stands in for the other: the stand-ins predict exactly.
  EXPECT_DOUBLE_EQ(validated_stand_in_weight(shifts, {stand_in(1), stand_in(0), stand_in(3), stand_in(2)}), 1.0);
  // Each stands in for one of the other pair: worse than the average, so none of them.
  EXPECT_DOUBLE_EQ(validated_stand_in_weight(shifts, {stand_in(2), stand_in(3), stand_in(0), stand_in(1)}), 0.0);
  // Stand-ins equal to the others' average, or fewer than three targets: nothing to fit.
  std::vector<std::vector<StandIn>> averages(4);
  for (int j = 0; j < 4; ++j) {
    for (int k = 0; k < 4; ++k) {
      if (k != j) averages[j].push_back({k, 1.0 / 3});
    }
  }
  EXPECT_DOUBLE_EQ(validated_stand_in_weight(shifts, averages), 1.0);
  EXPECT_DOUBLE_EQ(validated_stand_in_weight({{1, 0}, {0, 1}}, {stand_in(1), stand_in(0)}), 1.0);

  // In general, the weight whose blend fits the left-out shifts best in
  // least squares (against a fine grid), inside [0, 1].
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> noisy(6, std::vector<float>(4));
  for (auto& a : noisy) {
    for (float& v : a) v = normal(rng);
  }
  std::vector<std::vector<StandIn>> left_out;
  for (int j = 0; j < 6; ++j) left_out.push_back({{(j + 1) % 6, 0.7}, {(j + 2) % 6, 0.3}});
  for (int j = 0; j < 6; ++j) {  // pull each target towards its first stand-in, so the weight lies inside (0, 1)
    for (int i = 0; i < 4; ++i) noisy[j][i] += 0.8f * noisy[(j + 1) % 6][i];
  }
  const auto error_at = [&](double w) {
    double total = 0;
    for (int j = 0; j < 6; ++j) {
      for (int i = 0; i < 4; ++i) {
        double s = 0, m = 0;
        for (const StandIn& in : left_out[j]) s += in.weight * noisy[in.level][i];
        for (int k = 0; k < 6; ++k) m += k == j ? 0 : noisy[k][i] / 5.0;
        total += std::pow(noisy[j][i] - (w * s + (1 - w) * m), 2);
      }
    }
    return total;
  };
  double best = 0;
  for (double w = 0; w <= 1.0; w += 1e-4) best = error_at(w) < error_at(best) ? w : best;
  const double weight = validated_stand_in_weight(noisy, left_out);
  EXPECT_GT(weight, 0.05);
  EXPECT_LT(weight, 0.95);
  EXPECT_NEAR(weight, best, 2e-4);

  // The blend: stand-ins scaled by the weight, every candidate sharing the rest.
  const std::vector<StandIn> blend = blend_with_average({{7, 0.75}, {9, 0.25}}, {7, 8, 9, 10}, 0.6);
  double total = 0, on_7 = 0;
  for (const StandIn& in : blend) {
    total += in.weight;
    if (in.level == 7) on_7 += in.weight;
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
  EXPECT_NEAR(on_7, 0.6 * 0.75 + 0.4 / 4, 1e-12);
  EXPECT_EQ(blend_with_average({{7, 1.0}}, {7, 8}, 1.0).size(), 1u);
  EXPECT_EQ(blend_with_average({{7, 1.0}}, {7, 8}, 0.0).size(), 2u);
  EXPECT_THROW(blend_with_average({{7, 1.0}}, {7, 8}, 1.5), std::invalid_argument);
  EXPECT_THROW(validated_stand_in_weight(shifts, {stand_in(0), stand_in(0), stand_in(3), stand_in(2)}),
               std::invalid_argument);  // a target standing in for itself
}
