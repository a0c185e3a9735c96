// Condition paths of the DiT backbone (setting condition_path): the condition
// as adaLN modulation (default), as tokens that the blocks cross-attend to,
// or as extra tokens in the sequence. Each must carry the condition: a model
// trained on two conditions generates each one's programme.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "condition/condition_encoder.hpp"
#include "error_message.hpp"
#include "exprflow/api.hpp"
#include "two_programme_cells.hpp"

using namespace exprflow;

TEST(ConditionPaths, TokensSumToTheConditionVector) {
  ConditionEncoder encoder(std::vector<CovariateSpec>{{"type", 3}, {"stim", 2}}, 8);
  Covariates c;
  c["type"] = at::tensor(std::vector<int64_t>{0, 2, -1});
  c["stim"] = at::tensor(std::vector<int64_t>{1, -1, 0});
  const Tensor tokens = encoder->tokens(c, 3, at::kCPU);  // (3, 2, 8)
  EXPECT_EQ(tokens.sizes(), (at::IntArrayRef{3, 2, 8}));
  EXPECT_TRUE(at::allclose(tokens.sum(1), encoder->forward(c, 3, at::kCPU)));
  ConditionEncoder none(std::vector<CovariateSpec>{}, 8);
  EXPECT_EQ(none->tokens({}, 3, at::kCPU).sizes(), (at::IntArrayRef{3, 1, 8}));
}

class ConditionPath : public ::testing::TestWithParam<std::string> {};

TEST_P(ConditionPath, CarriesTheCondition) {
  const TwoProgrammeCells data = two_programme_cells(TwoProgrammeSettings{});
  Options spec;
  spec.set("architecture", "latent_tokens").set("objective", "flow").set("seed", 1).set("n_tokens", 4)
      .set("token_dim", 16).set("n_layers", 2).set("n_heads", 2).set("hidden", 32).set("condition_path", GetParam());
  auto model = GenerativeModel::create(spec, data.source->genes(), {"a", "b"});
  model->train(*data.source, data.conditions,
               Options().set("epochs", 150).set("batch_size", 16).set("learning_rate", 3e-3).set("seed", 2), {});
  std::vector<int> ask(60);
  for (int i = 0; i < 60; ++i) ask[i] = i % 2;
  const Options sampling = Options().set("steps", 10).set("seed", 3);
  const GeneratedCells cells = model->generate(ask, sampling);
  // Mean log expression of the first half of the genes minus the second, per condition.
  double contrast[2] = {0, 0};
  const int G = cells.n_genes;
  for (int i = 0; i < cells.n_cells; ++i) {
    double first = 0, second = 0;
    for (int g = 0; g < G; ++g) (g < G / 2 ? first : second) += cells.logcounts[static_cast<size_t>(i) * G + g];
    contrast[ask[i]] += (first - second) / (G / 2) / (cells.n_cells / 2);
  }
  // The data: log(20 / 3) = 1.9 either way. At 150 epochs each path gets
  // 2.0-2.1 / -2.0; at 60, cross-attention and tokens already get 2.0 / -1.9
  // while adaLN (whose modulation starts at zero) still generates one
  // programme for both.
  EXPECT_GT(contrast[0], 0.5) << GetParam();
  EXPECT_LT(contrast[1], -0.5) << GetParam();
  const auto loaded = GenerativeModel::load_bytes(model->to_bytes());
  EXPECT_EQ(loaded->spec().text("condition_path"), GetParam());
  EXPECT_EQ(loaded->generate(ask, sampling).counts, cells.counts);
}

INSTANTIATE_TEST_SUITE_P(DiT, ConditionPath, ::testing::Values("adaln", "cross_attention", "tokens"));

TEST(ConditionPaths, UnknownPathIsNamed) {
  Options spec;
  spec.set("architecture", "latent_tokens").set("condition_path", "film");
  EXPECT_TRUE(mentions(error_of([&] { GenerativeModel::create(spec, {"g0", "g1"}, {"a"}); }), "condition_path"));
}
