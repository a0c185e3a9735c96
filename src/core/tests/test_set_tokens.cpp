// Set tokens: pooling gene tokens by attention is blind to the order of the
// genes, and unpooling gives each gene the readout of its own query.
#include <gtest/gtest.h>

#include "decode/set_unpooling.hpp"
#include "tokenize/set_pooling_tokens.hpp"

using namespace exprflow;

TEST(SetPoolingTokens, AreInvariantToTheOrderOfTheGenes) {
  at::manual_seed(1);
  constexpr int64_t G = 7, m = 3, D = 8;
  SetPoolingTokens pooled(G, m, D, 2);
  const Tensor x = at::randn({4, G});
  const Tensor tokens = pooled->forward(x);  // (4, m, D)
  ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{4, m, D}));
  // The same genes in another order, each with its own embedding: the same tokens.
  const Tensor order = at::randperm(G, at::kLong);
  {
    torch::NoGradGuard no_grad;
    Tensor gene = pooled->named_parameters()["genes.gene"];
    gene.copy_(gene.index_select(0, order));
  }
  EXPECT_TRUE(at::allclose(pooled->forward(x.index_select(1, order)), tokens, 1e-5, 1e-5));
  // ... but a cell's values decide them.
  EXPECT_FALSE(at::allclose(pooled->forward(x.index_select(1, order).flip(0)), tokens, 1e-3, 1e-3));
}

TEST(SetUnpooling, EachGeneReadsItsOwnQuery) {
  at::manual_seed(2);
  constexpr int64_t G = 5, m = 3, D = 8;
  SetUnpooling unpool(G, D, 2, /*heads=*/2);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : unpool->parameters()) p.copy_(at::randn(p.sizes()));
  }
  const Tensor tokens = at::randn({2, m, D});
  const GeneOutput out = unpool->forward(tokens);
  ASSERT_EQ(out.value.sizes(), (std::vector<int64_t>{2, G}));
  ASSERT_TRUE(out.scale.defined());
  // Swapping two genes' queries and biases swaps their outputs and nothing else.
  {
    torch::NoGradGuard no_grad;
    auto p = unpool->named_parameters();
    const Tensor swap = at::tensor({3, 1, 2, 0, 4}, at::kLong);
    p["queries"].copy_(p["queries"].index_select(0, swap));
    p["readout.bias"].copy_(p["readout.bias"].view({2, G}).index_select(1, swap).reshape(-1));
    const GeneOutput swapped = unpool->forward(tokens);
    EXPECT_TRUE(at::allclose(swapped.value, out.value.index_select(1, swap), 1e-5, 1e-5));
    EXPECT_TRUE(at::allclose(swapped.scale, out.scale.index_select(1, swap), 1e-5, 1e-5));
  }
}
