// Backbone stage: attention, DiT blocks with adaLN-Zero, final modulation.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "backbone/attention.hpp"
#include "backbone/dit_block.hpp"

using namespace exprflow;

TEST(Attention, MatchesReference) {
  at::manual_seed(1);
  Tensor q = at::randn({3, 2, 5, 8}), k = at::randn({3, 2, 5, 8}), v = at::randn({3, 2, 5, 8});
  Tensor fast = attention(q, k, v);
  Tensor ref = attention_reference(q, k, v);
  ASSERT_EQ(fast.sizes(), q.sizes());
  EXPECT_TRUE(at::allclose(fast, ref, 1e-5, 1e-6))
      << "max difference " << (fast - ref).abs().max().item<float>();
}

TEST(Attention, ReferenceIsSoftmaxAttention) {
  // One head, two tokens, width 1: check softmax(q k^T / sqrt(1)) v by hand.
  Tensor q = at::tensor(std::vector<float>{1.0f, 0.0f}).view({1, 1, 2, 1});
  Tensor k = at::tensor(std::vector<float>{2.0f, -1.0f}).view({1, 1, 2, 1});
  Tensor v = at::tensor(std::vector<float>{10.0f, 20.0f}).view({1, 1, 2, 1});
  Tensor out = attention_reference(q, k, v);
  const double w = std::exp(2.0) / (std::exp(2.0) + std::exp(-1.0));  // query 0 weights key 0
  EXPECT_NEAR(out[0][0][0][0].item<float>(), 10 * w + 20 * (1 - w), 1e-4);
  EXPECT_NEAR(out[0][0][1][0].item<float>(), 15.0, 1e-4);  // query 1 is zero: uniform weights
}

TEST(SelfAttention, ShapeAndMixing) {
  at::manual_seed(2);
  SelfAttention attn(16, 2);
  Tensor x = at::randn({4, 5, 16});
  Tensor y = attn->forward(x);
  EXPECT_EQ(y.sizes(), x.sizes());
  // Changing one token changes the outputs of the others (tokens attend to each other).
  Tensor x2 = x.clone();
  x2[0][4] += 1.0;
  Tensor y2 = attn->forward(x2);
  EXPECT_FALSE(at::allclose(y[0][0], y2[0][0])) << "token 0 ignores token 4";
  EXPECT_TRUE(at::allclose(y[1], y2[1])) << "cells are mixed";
}

TEST(SelfAttention, RejectsIndivisibleWidth) {
  try {
    SelfAttention attn(10, 3);
    FAIL() << "dim 10 with 3 heads did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("10"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(DiTBlock(10, 4), std::invalid_argument);
}

TEST(DiTBlock, FreshBlockIsIdentity) {
  at::manual_seed(3);
  DiTBlock block(16, 2);
  Tensor x = at::randn({4, 6, 16}) * 3.0, c = at::randn({4, 16});
  Tensor y = block->forward(x, c);
  EXPECT_TRUE(at::equal(y, x)) << "adaLN-Zero block is not the identity at initialisation; max diff "
                               << (y - x).abs().max().item<float>();

  // Perturb only the modulation regression (the D -> 6D layer, found by its
  // shape so the test does not depend on parameter names): the gates open.
  int found = 0;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : block->parameters()) {
      if (p.size(0) == 6 * 16) {
        p.normal_(0.0, 0.1);
        ++found;
      }
    }
  }
  ASSERT_EQ(found, 2) << "expected the modulation layer's weight (96, 16) and bias (96)";
  Tensor z = block->forward(x, c);
  EXPECT_EQ(z.sizes(), x.sizes());
  EXPECT_FALSE(at::allclose(z, x, 1e-4, 1e-4)) << "block still the identity after opening its gates";
  // The modulation depends on c: a different c gives a different output.
  Tensor z2 = block->forward(x, c + 1.0);
  EXPECT_FALSE(at::allclose(z, z2)) << "output ignores the conditioning vector";
}

TEST(DiTBlock, GradientsReachModulationAtInit) {
  // adaLN-Zero: at init only the modulation layer gets a gradient from the
  // gates (it is the path that opens them); the loss must still be trainable.
  at::manual_seed(4);
  DiTBlock block(8, 2);
  Tensor x = at::randn({2, 3, 8}), c = at::randn({2, 8});
  block->forward(x, c).pow(2).sum().backward();
  double modulation_grad = 0;
  for (auto& p : block->parameters()) {
    if (p.size(0) == 6 * 8 && p.grad().defined()) modulation_grad += p.grad().abs().sum().item<double>();
  }
  EXPECT_GT(modulation_grad, 0.0);
}

TEST(Modulate, Formula) {
  Tensor x = at::ones({2, 3, 4});
  Tensor shift = at::full({2, 4}, 0.5), scale = at::full({2, 4}, 1.0);
  Tensor y = modulate(x, shift, scale);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_TRUE(at::allclose(y, at::full({2, 3, 4}, 2.5)));
}

TEST(FinalModulation, ShapeAndInitialLayerNorm) {
  at::manual_seed(5);
  FinalModulation final_layer(16);
  Tensor x = at::randn({3, 4, 16}) * 2 + 1, c = at::randn({3, 16});
  Tensor y = final_layer->forward(x, c);
  EXPECT_EQ(y.sizes(), x.sizes());
  // Zero-initialised modulation: a plain affine-free LayerNorm.
  Tensor expected = at::layer_norm(x, {16}, {}, {}, 1e-6);
  EXPECT_TRUE(at::allclose(y, expected, 1e-5, 1e-5));
}
