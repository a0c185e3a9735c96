// Connectivity building blocks: expression binning (hard and learned), biased
// (ALiBi) attention against its plain reference, gene tokens against the
// seed design's unfactorised computation, and the attention layer.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "connectivity/attention_layer.hpp"
#include "connectivity/binning.hpp"
#include "connectivity/biased_attention.hpp"
#include "connectivity/gene_tokens.hpp"
#include "connectivity/pair_network.hpp"
#include "backbone/attention.hpp"
#include "test_connectivity_helpers.hpp"

using namespace exprflow;

namespace {

std::vector<int64_t> as_longs(const Tensor& t) {
  Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

TEST(ConnectivityBinning, HardBinsOnEdgesZeroAndOne) {
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

TEST(ConnectivityBinning, LearnedBinsReduceToHardBinsAtLowTemperature) {
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

TEST(ConnectivityBinning, LearnedEdgesStartEqualStaySortedAndTrain) {
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

TEST(ConnectivityBinning, RejectsBadSettings) {
  EXPECT_THROW(ExpressionBinning(1, false, 0.05), std::invalid_argument);
  EXPECT_THROW(ExpressionBinning(5, true, 0.0), std::invalid_argument);
  EXPECT_THROW(hard_bins(at::zeros({2}), 1), std::invalid_argument);
}

TEST(ConnectivityAttention, BiasedMatchesReferenceWithAlibi) {
  at::manual_seed(5);
  // Cross-attention shapes: 3 CLS + 6 gene queries over 6 gene keys.
  Tensor q = at::randn({2, 4, 9, 8}), k = at::randn({2, 4, 6, 8}), v = at::randn({2, 4, 6, 8});
  Tensor q_pos = at::cat({at::full({3}, std::numeric_limits<float>::quiet_NaN()), at::arange(6).to(at::kFloat)});
  Tensor bias = alibi_bias(4, q_pos, at::arange(6).to(at::kFloat));  // (4, 9, 6)
  Tensor fast = biased_attention(q, k, v, bias);
  Tensor ref = biased_attention_reference(q, k, v, bias);
  ASSERT_EQ(fast.sizes(), q.sizes());
  EXPECT_TRUE(at::allclose(fast, ref, 1e-5, 1e-6)) << "max difference " << (fast - ref).abs().max().item<float>();
  // The bias matters, and without one the function is plain attention.
  EXPECT_FALSE(at::allclose(ref, attention_reference(q, k, v), 1e-3, 1e-3));
  EXPECT_TRUE(at::allclose(biased_attention(q, k, v, Tensor()), attention_reference(q, k, v), 1e-5, 1e-6));
  // Weights: rows sum to 1, and weights @ v is the reference output.
  Tensor p = attention_probabilities(q, k, bias);  // (2, 4, 9, 6)
  EXPECT_TRUE(at::allclose(p.sum(-1), at::ones({2, 4, 9}), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(at::matmul(p, v), ref, 1e-5, 1e-6));
}

TEST(ConnectivityAttention, AlibiBiasByHand) {
  // Two heads: slopes 2^-4 and 2^-8. Query positions {NaN (CLS), 0, 2}, keys {0, 1, 2}.
  Tensor slopes = alibi_slopes(2);
  EXPECT_FLOAT_EQ(slopes[0].item<float>(), 0.0625f);
  EXPECT_FLOAT_EQ(slopes[1].item<float>(), 0.00390625f);
  Tensor q_pos = at::tensor(std::vector<float>{std::numeric_limits<float>::quiet_NaN(), 0.0f, 2.0f});
  Tensor bias = alibi_bias(2, q_pos, at::tensor(std::vector<float>{0.0f, 1.0f, 2.0f}));
  ASSERT_EQ(bias.sizes(), (std::vector<int64_t>{2, 3, 3}));
  EXPECT_TRUE(at::equal(bias[0][0], at::zeros({3}))) << "the CLS query has no bias";
  EXPECT_FLOAT_EQ(bias[0][1][2].item<float>(), -0.125f);
  EXPECT_FLOAT_EQ(bias[0][2][0].item<float>(), -0.125f);
  EXPECT_FLOAT_EQ(bias[0][2][2].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(bias[1][1][1].item<float>(), -0.00390625f);
}

TEST(ConnectivityAttention, BiasShiftsWeightsByHand) {
  // One head, width 1, q = 0: scores are all zero, so weights = softmax(bias).
  Tensor q = at::zeros({1, 1, 1, 1}), k = at::tensor(std::vector<float>{1, 2}).view({1, 1, 2, 1});
  Tensor v = at::tensor(std::vector<float>{10, 20}).view({1, 1, 2, 1});
  Tensor bias = at::tensor(std::vector<float>{0.0f, -std::log(3.0f)}).view({1, 1, 2});
  EXPECT_NEAR(biased_attention(q, k, v, bias).item<float>(), 10 * 0.75 + 20 * 0.25, 1e-4);
  EXPECT_NEAR(biased_attention_reference(q, k, v, bias).item<float>(), 12.5, 1e-4);
}

TEST(ConnectivityGeneTokens, FactorisedTokensEqualSeedDesign) {
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

TEST(ConnectivityGeneTokens, RejectsBadEmbeddings) {
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

TEST(ConnectivityLayers, CrossAttentionLayerShapesAndWeights) {
  at::manual_seed(7);
  AttentionLayer layer(16, 2, 2.0, 0.0, /*cross=*/true);
  Tensor x = at::randn({3, 5, 16}), memory = at::randn({3, 4, 16});
  Tensor weights;
  Tensor y = layer->forward(x, memory, Tensor(), &weights);
  EXPECT_EQ(y.sizes(), x.sizes());
  ASSERT_EQ(weights.sizes(), (std::vector<int64_t>{3, 5, 4}));
  EXPECT_TRUE(at::allclose(weights.sum(-1), at::ones({3, 5}), 1e-5, 1e-6));
  // The weights path and the fast path give the same output.
  EXPECT_TRUE(at::allclose(layer->forward(x, memory), y, 1e-5, 1e-6));
  // The memory matters; the batch items do not mix.
  Tensor memory2 = memory.clone();
  memory2[0] += 1.0;
  Tensor y2 = layer->forward(x, memory2);
  EXPECT_FALSE(at::allclose(y2[0], y[0]));
  EXPECT_TRUE(at::allclose(y2[1], y[1]));
  EXPECT_THROW(AttentionLayer(10, 3, 2.0, 0.0, true), std::invalid_argument);
  EXPECT_THROW(AttentionLayer(16, 2, 2.0, 1.0, true), std::invalid_argument);
}

TEST(ConnectivityLayers, HeadSizesParse) {
  EXPECT_EQ(parse_hidden_sizes("512,256,128", "head_hidden"), (std::vector<int64_t>{512, 256, 128}));
  EXPECT_EQ(parse_hidden_sizes(" 8 , 4", "head_hidden"), (std::vector<int64_t>{8, 4}));
  EXPECT_TRUE(parse_hidden_sizes("", "head_hidden").empty());
  EXPECT_THROW(parse_hidden_sizes("8,,4", "head_hidden"), std::invalid_argument);
  EXPECT_THROW(parse_hidden_sizes("8,x", "head_hidden"), std::invalid_argument);
  EXPECT_THROW(parse_hidden_sizes("0", "head_hidden"), std::invalid_argument);
  MlpHead head(6, std::vector<int64_t>{4, 3}, 0.0);
  EXPECT_EQ(head->forward(at::randn({5, 6})).sizes(), (std::vector<int64_t>{5}));
}
