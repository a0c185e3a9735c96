// Set tokens: pooling gene tokens by attention is blind to the order of the
// genes, and unpooling gives each gene the readout of its own query.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

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

namespace {

// Every parameter away from its initial value (LayerNorm's 1 / 0, zero
// biases and read-out), so that each term of a factored path counts; in
// double precision, where the factored and plain paths differ by rounding
// alone (in float32 they differ by up to 1e-4 in gradients).
void randomise(torch::nn::Module& module) {
  module.to(at::kDouble);
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.copy_(at::randn(p.sizes()));
}

// The outputs of `run` and the gradients of every parameter of `module` for
// a fixed weighting of those outputs.
std::vector<Tensor> outputs_and_gradients(torch::nn::Module& module, const std::function<std::vector<Tensor>()>& run) {
  module.zero_grad();
  std::vector<Tensor> outputs = run();
  Tensor objective = at::zeros({});
  for (const Tensor& o : outputs) objective = objective + (o * at::linspace(-1, 2, o.numel()).view(o.sizes())).sum();
  objective.backward();
  std::vector<Tensor> all;
  for (const Tensor& o : outputs) all.push_back(o.detach());
  for (auto& p : module.parameters()) all.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return all;
}

void expect_same(const std::vector<Tensor>& fast, const std::vector<Tensor>& reference) {
  ASSERT_EQ(fast.size(), reference.size());
  for (size_t i = 0; i < fast.size(); ++i) {
    EXPECT_TRUE(at::allclose(fast[i], reference[i], 1e-9, 1e-9)) << "output / gradient " << i << ": max difference "
                                                                 << (fast[i] - reference[i]).abs().max().item<float>();
  }
}

}  // namespace

TEST(SetPoolingTokens, PoolLikeTheReferenceThatBuildsTheGeneTokens) {
  at::manual_seed(3);
  constexpr int64_t G = 11, m = 3, D = 8, B = 5;
  SetPoolingTokens pooled(G, m, D, 2);
  randomise(*pooled);
  // Values as a model sees them, and large ones where the variance of a
  // token is dominated by its value.
  const Tensor x = at::cat({at::randn({B - 1, G}), 30 * at::randn({1, G})}).to(at::kDouble);  // (B, G)
  const auto fast = outputs_and_gradients(*pooled, [&] { return std::vector<Tensor>{pooled->forward(x)}; });
  const auto reference =
      outputs_and_gradients(*pooled, [&] { return std::vector<Tensor>{pooled->forward_reference(x)}; });
  ASSERT_EQ(fast[0].sizes(), (std::vector<int64_t>{B, m, D}));
  expect_same(fast, reference);
}

TEST(SetUnpooling, ReadsOutLikeTheReferenceThatBuildsTheGeneTokens) {
  at::manual_seed(4);
  constexpr int64_t G = 9, m = 3, D = 8, B = 4;
  SetUnpooling unpool(G, D, 2, /*heads=*/2);
  randomise(*unpool);
  const Tensor tokens = at::randn({B, m, D}, at::kDouble);
  auto both = [](const GeneOutput& out) { return std::vector<Tensor>{out.value, out.scale}; };
  const auto fast = outputs_and_gradients(*unpool, [&] { return both(unpool->forward(tokens)); });
  const auto reference = outputs_and_gradients(*unpool, [&] { return both(unpool->forward_reference(tokens)); });
  ASSERT_EQ(fast[0].sizes(), (std::vector<int64_t>{B, G}));
  expect_same(fast, reference);
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
