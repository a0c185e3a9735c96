// Connectivity building blocks: the pre-norm (cross-)attention layer with an
// optional ALiBi bias and its attention weights, and the regression head.
// (Attention itself: test_backbone.cpp; gene tokens: test_gene_tokens.cpp.)
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <vector>

#include "backbone/alibi.hpp"
#include "connectivity/attention_layer.hpp"
#include "connectivity/pair_network.hpp"

using namespace exprflow;

TEST(ConnectivityLayers, CrossAttentionLayerShapesAndWeights) {
  at::manual_seed(7);
  AttentionLayer layer(16, 2, 2.0, 0.0, /*cross=*/true);
  Tensor x = at::randn({3, 5, 16}), memory = at::randn({3, 4, 16});
  Tensor weights;
  Tensor y = layer->forward(x, memory, Tensor(), &weights);
  EXPECT_EQ(y.sizes(), x.sizes());
  ASSERT_EQ(weights.sizes(), (std::vector<int64_t>{3, 5, 4}));
  EXPECT_TRUE(at::allclose(weights.sum(-1), at::ones({3, 5}), 1e-5, 1e-6));
  // The weights path and the fast path give the same output, with and without a bias.
  EXPECT_TRUE(at::allclose(layer->forward(x, memory), y, 1e-5, 1e-6));
  Tensor q_pos = at::cat({at::full({1}, std::numeric_limits<float>::quiet_NaN()), at::arange(4).to(at::kFloat)});
  Tensor bias = alibi_bias(2, q_pos, at::arange(4).to(at::kFloat));  // (2, 5, 4)
  Tensor biased_weights;
  Tensor biased = layer->forward(x, memory, bias, &biased_weights);
  EXPECT_TRUE(at::allclose(layer->forward(x, memory, bias), biased, 1e-5, 1e-6));
  EXPECT_FALSE(at::allclose(biased, y, 1e-4, 1e-4)) << "the bias is ignored";
  EXPECT_TRUE(at::allclose(biased_weights.sum(-1), at::ones({3, 5}), 1e-5, 1e-6));
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
