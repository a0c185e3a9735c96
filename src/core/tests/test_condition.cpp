// Condition stage: timestep features / embedding, categorical conditions and
// classifier-free-guidance dropout.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "condition/categorical_condition.hpp"
#include "condition/condition_encoder.hpp"
#include "condition/timestep_embedding.hpp"

using namespace exprflow;

TEST(SinusoidalFeatures, ShapeAndValues) {
  const int64_t dim = 8;
  Tensor t = at::tensor(std::vector<int64_t>{0, 5, 999});
  Tensor f = sinusoidal_features(t, dim);
  ASSERT_EQ(f.dim(), 2);
  EXPECT_EQ(f.size(0), 3);
  EXPECT_EQ(f.size(1), dim);
  EXPECT_EQ(f.scalar_type(), at::kFloat);
  auto a = f.accessor<float, 2>();
  for (int64_t j = 0; j < dim / 2; ++j) {
    EXPECT_FLOAT_EQ(a[0][j], 1.0f) << "cos half at t = 0, feature " << j;
    EXPECT_FLOAT_EQ(a[0][dim / 2 + j], 0.0f) << "sin half at t = 0, feature " << j;
  }
  // Frequencies 1 down to 1/max_period: exp(-log(1e4) * j / half).
  for (int64_t row = 1; row < 3; ++row) {
    const double tv = row == 1 ? 5.0 : 999.0;
    for (int64_t j = 0; j < dim / 2; ++j) {
      const double freq = std::exp(-std::log(10000.0) * j / (dim / 2));
      EXPECT_NEAR(a[row][j], std::cos(tv * freq), 2e-4) << "t " << tv << " j " << j;
      EXPECT_NEAR(a[row][dim / 2 + j], std::sin(tv * freq), 2e-4) << "t " << tv << " j " << j;
    }
  }
  // Odd widths are padded with a zero column.
  Tensor odd = sinusoidal_features(t, 7);
  EXPECT_EQ(odd.size(1), 7);
  EXPECT_TRUE(at::all(odd.select(1, 6) == 0).item<bool>());
  // Fractional timesteps are fine.
  Tensor frac = sinusoidal_features(at::tensor(std::vector<float>{0.5f}), 4);
  EXPECT_NEAR(frac[0][0].item<float>(), std::cos(0.5), 1e-6);
}

TEST(TimestepEmbedding, Shape) {
  TimestepEmbedding emb(16, 32);
  Tensor out = emb->forward(at::tensor(std::vector<float>{0.0f, 0.01f, 0.099f}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_FALSE(at::allclose(out[0], out[2])) << "different timesteps, same embedding";
}

TEST(CategoricalCondition, NullIndexAndShape) {
  CategoricalCondition cond(3, 8);
  EXPECT_EQ(cond->null_index(), 3);
  EXPECT_EQ(cond->n_levels(), 3);
  Tensor out = cond->forward(at::tensor(std::vector<int64_t>{0, 1, 2, 3, 1}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5, 8}));
  EXPECT_TRUE(at::equal(out[1], out[4])) << "same level, different vector";
  EXPECT_FALSE(at::equal(out[0], out[3])) << "level 0 equals the null row";
  // Small initialisation (std 0.02).
  EXPECT_LT(out.abs().max().item<float>(), 0.2f);
  // The null index is the last valid row; beyond it is an error.
  EXPECT_ANY_THROW(cond->forward(at::tensor(std::vector<int64_t>{4})));

  CategoricalCondition unconditional(0, 4);
  EXPECT_EQ(unconditional->null_index(), 0);
  EXPECT_EQ(unconditional->forward(at::tensor(std::vector<int64_t>{0, 0})).sizes(),
            (std::vector<int64_t>{2, 4}));
}

TEST(DropCovariates, EachAttributeIndependentlyWithProbabilityP) {
  at::Generator gen = at::detail::createCPUGenerator(123);
  Tensor a = at::randint(0, 3, {10000}, at::TensorOptions().dtype(at::kLong));
  Tensor b = at::randint(0, 5, {10000}, at::TensorOptions().dtype(at::kLong));
  const Covariates c{{"a", a}, {"b", b}};
  Covariates kept = drop_covariates(c, 0.0, gen);
  EXPECT_TRUE(at::equal(kept.at("a"), a) && at::equal(kept.at("b"), b)) << "p = 0 changed covariates";
  Covariates dropped = drop_covariates(c, 1.0, gen);
  EXPECT_EQ(dropped.at("a").scalar_type(), at::kLong);
  EXPECT_TRUE(at::all(dropped.at("a") == -1).item<bool>() && at::all(dropped.at("b") == -1).item<bool>());
  Covariates half = drop_covariates(c, 0.5, gen);
  Tensor null_a = half.at("a") == -1, null_b = half.at("b") == -1;
  // Binomial(10000, 0.5): sd 0.005; 0.45..0.55 is 10 sd.
  EXPECT_NEAR(null_a.to(at::kDouble).mean().item<double>(), 0.5, 0.05);
  EXPECT_NEAR(null_b.to(at::kDouble).mean().item<double>(), 0.5, 0.05);
  // Per attribute: both null together in ~1/4 of the cells, not ~1/2.
  EXPECT_NEAR((null_a & null_b).to(at::kDouble).mean().item<double>(), 0.25, 0.05);
  // Cells not dropped keep their code.
  EXPECT_TRUE(at::equal(half.at("a").masked_select(~null_a), a.masked_select(~null_a)));
}

TEST(ConditionEncoder, SumsOneTablePerCovariateWithNullRows) {
  at::manual_seed(5);
  ConditionEncoder enc(std::vector<CovariateSpec>{{"cell_type", 3}, {"stim", 2}}, 8);
  Tensor ct = at::tensor(std::vector<int64_t>{0, 2, -1}), stim = at::tensor(std::vector<int64_t>{1, -1, -1});
  Tensor both = enc->forward({{"cell_type", ct}, {"stim", stim}}, 3, at::kCPU);  // (3, 8)
  EXPECT_EQ(both.sizes(), (std::vector<int64_t>{3, 8}));
  // A covariate missing from the batch counts as null: row 2 has both null.
  Tensor only_ct = enc->forward({{"cell_type", ct}}, 3, at::kCPU);
  EXPECT_TRUE(at::allclose(both[1], only_ct[1])) << "stim null given, and stim missing, differ";
  EXPECT_TRUE(at::allclose(both[2], only_ct[2]));
  EXPECT_FALSE(at::allclose(both[0], only_ct[0])) << "stim level 1 did not change the condition vector";
  // Without covariates the condition is zero.
  ConditionEncoder none(std::vector<CovariateSpec>{}, 4);
  EXPECT_TRUE(at::all(none->forward({}, 2, at::kCPU) == 0).item<bool>());
}
