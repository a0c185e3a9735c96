// Tokenize stage, gene tokens: expression binning (hard and learned) and the
// gene-token embedding against the seed design's unfactorised computation.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "test_connectivity_helpers.hpp"
#include "tokenize/expression_binning.hpp"
#include "tokenize/gene_tokens.hpp"

using namespace exprflow;

namespace {

std::vector<int64_t> as_longs(const Tensor& t) {
  Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

TEST(ExpressionBinning, HardBinsOnEdgesZeroAndOne) {
  // Five bins of width 0.2: an edge value goes to the upper bin, 1 to the last.
  Tensor x = at::tensor(std::vector<float>{0.0f, 0.1999f, 0.2f, 0.4f, 0.5f, 0.6f, 0.8f, 0.99f, 1.0f});
  EXPECT_EQ(as_longs(hard_bins(x, 5)), (std::vector<int64_t>{0, 0, 1, 2, 2, 3, 4, 4, 4}));
  // Four bins: 0.25, 0.5 and 0.75 are exact in float.
  Tensor y = at::tensor(std::vector<float>{0.0f, 0.2499f, 0.25f, 0.5f, 0.7499f, 0.75f, 1.0f});
  EXPECT_EQ(as_longs(hard_bins(y, 4)), (std::vector<int64_t>{0, 0, 1, 2, 2, 3, 3}));
  // Shape is kept; the module gives the one-hot of the same bins.
  ExpressionBinning binning(5, /*learned=*/false, 0.05);
  Tensor m = at::tensor(std::vector<float>{0.0f, 0.2f, 1.0f, 0.7f}).view({2, 2});
  Tensor onehot = binning->forward(m);  // (2, 2, 5)
  ASSERT_EQ(onehot.sizes(), (std::vector<int64_t>{2, 2, 5}));
  EXPECT_TRUE(at::equal(onehot.argmax(-1), hard_bins(m, 5)));
  EXPECT_TRUE(at::equal(onehot.sum(-1), at::ones({2, 2})));
}

TEST(ExpressionBinning, LearnedBinsReduceToHardBinsAtLowTemperature) {
  at::manual_seed(4);
  // Values at least 0.01 away from every edge k / 5.
  Tensor x = at::rand({40, 7});
  Tensor edge_distance = (x * 5 - at::round(x * 5)).abs() / 5;
  x = at::where(edge_distance < 0.01, x * 0 + 0.1, x);
  ExpressionBinning cold(5, /*learned=*/true, 1e-4);
  Tensor soft = cold->forward(x);  // (40, 7, 5)
  Tensor hard = at::one_hot(hard_bins(x, 5), 5).to(at::kFloat);
  EXPECT_TRUE(at::allclose(soft, hard, 0, 1e-6)) << "max difference " << (soft - hard).abs().max().item<float>();
  // At a usable temperature: a distribution over bins, peaked at the hard bin.
  ExpressionBinning warm(5, /*learned=*/true, 0.05);
  Tensor p = warm->forward(x);
  EXPECT_TRUE(at::allclose(p.sum(-1), at::ones({40, 7}), 1e-5, 1e-6));
  EXPECT_GE(p.min().item<float>(), 0.0f);
  EXPECT_TRUE(at::equal(p.argmax(-1), hard_bins(x, 5)));
  EXPECT_LT(std::get<0>(p.max(-1)).min().item<float>(), 1.0f) << "warm soft bins are not soft";
}

TEST(ExpressionBinning, LearnedEdgesStartEqualStaySortedAndTrain) {
  ExpressionBinning binning(4, /*learned=*/true, 0.05);
  Tensor e = binning->edges();
  EXPECT_TRUE(at::allclose(e, at::tensor(std::vector<float>{0.25f, 0.5f, 0.75f}), 0, 1e-6));
  // Any width parameters give sorted edges inside (0, 1).
  {
    torch::NoGradGuard no_grad;
    binning->parameters()[0].copy_(at::tensor(std::vector<float>{3.0f, -2.0f, 0.5f, 1.0f}));
  }
  e = binning->edges();
  EXPECT_GT(e[0].item<float>(), 0.0f);
  EXPECT_LT(e[2].item<float>(), 1.0f);
  EXPECT_LT(e[0].item<float>(), e[1].item<float>());
  EXPECT_LT(e[1].item<float>(), e[2].item<float>());
  // Gradients reach the boundaries.
  Tensor out = binning->forward(at::full({3, 2}, 0.4f)).select(-1, 0).sum();
  out.backward();
  EXPECT_GT(binning->parameters()[0].grad().abs().sum().item<float>(), 0.0f);
}

TEST(ExpressionBinning, RejectsBadSettings) {
  EXPECT_THROW(ExpressionBinning(1, false, 0.05), std::invalid_argument);
  EXPECT_THROW(ExpressionBinning(5, true, 0.0), std::invalid_argument);
  EXPECT_THROW(hard_bins(at::zeros({2}), 1), std::invalid_argument);
}

TEST(GeneTokens, FactorisedTokensEqualSeedDesign) {
  at::manual_seed(6);
  const int G = 9, E = 12, D = 8, bins = 5;
  GeneEmbedding genes = testing_connectivity::synthetic_embedding(G, E, /*every_missing=*/3);
  GeneTokenizer tokens(genes, D, bins, /*learned_bins=*/false, 0.05);
  Tensor x = at::rand({4, G});
  Tensor fast = tokens->forward(x);  // (4, G, D)
  ASSERT_EQ(fast.sizes(), (std::vector<int64_t>{4, G, D}));
  // Seed design, literally: one-hot -> Linear -> E, + gene vector, -> Linear -> D.
  auto params = tokens->named_parameters();
  Tensor Wb = params["bin_embedding.weight"], bb = params["bin_embedding.bias"];
  Tensor Wp = params["projection.weight"], bp = params["projection.bias"];
  Tensor onehot = at::one_hot(hard_bins(x, bins), bins).to(at::kFloat);  // (4, G, bins)
  Tensor h = at::matmul(onehot, Wb.t()) + bb + tokens->gene_vectors();     // (4, G, E)
  Tensor slow = at::matmul(h, Wp.t()) + bp;                                // (4, G, D)
  EXPECT_TRUE(at::allclose(fast, slow, 1e-4, 1e-5)) << "max difference " << (fast - slow).abs().max().item<float>();
  // Genes with a vector keep it exactly; genes without one use a learned row.
  Tensor vectors = tokens->gene_vectors();
  Tensor given = at::tensor(genes.values).view({G, E});
  EXPECT_TRUE(at::equal(vectors[0], given[0]));
  EXPECT_TRUE(at::isfinite(vectors).all().item<bool>());
  EXPECT_EQ(params["learned_vectors"].size(0), 3) << "genes 3, 6, 9 have no vector";
  EXPECT_FALSE(at::equal(vectors[2], at::zeros({E})));
  // The learned rows receive gradients.
  tokens->forward(x).sum().backward();
  EXPECT_GT(params["learned_vectors"].grad().abs().sum().item<float>(), 0.0f);
  // Learned bins go through the soft path with the same shapes.
  GeneTokenizer soft(genes, D, bins, /*learned_bins=*/true, 0.05);
  EXPECT_EQ(soft->forward(x).sizes(), fast.sizes());
}

TEST(GeneTokens, RejectsBadEmbeddings) {
  GeneEmbedding genes = testing_connectivity::synthetic_embedding(4, 3, 0);
  genes.values.pop_back();
  EXPECT_THROW(check_gene_embedding(genes), std::invalid_argument);
  genes = testing_connectivity::synthetic_embedding(4, 3, 0);
  genes.values[5] = NAN;
  EXPECT_THROW(check_gene_embedding(genes), std::invalid_argument);
  genes.has_vector[1] = 0;  // gene 2's values (5 is in gene 2) are now ignored
  EXPECT_NO_THROW(check_gene_embedding(genes));
  genes.has_vector.pop_back();
  EXPECT_THROW(check_gene_embedding(genes), std::invalid_argument);
}
