// Set tokens: pooling gene tokens by attention is blind to the order of the
// genes, and unpooling gives each gene the readout of its own query.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "decode/set_unpooling.hpp"
#include "error_message.hpp"
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
  for (const bool summary_token : {false, true}) {
    at::manual_seed(3);
    constexpr int64_t G = 11, m = 3, D = 8, B = 5;
    SetPoolingTokens pooled(G, m, D, 2, summary_token);
    randomise(*pooled);
    // Values as a model sees them, and large ones where the variance of a
    // token is dominated by its value.
    const Tensor x = at::cat({at::randn({B - 1, G}), 30 * at::randn({1, G})}).to(at::kDouble);  // (B, G)
    const auto fast = outputs_and_gradients(*pooled, [&] { return std::vector<Tensor>{pooled->forward(x)}; });
    const auto reference =
        outputs_and_gradients(*pooled, [&] { return std::vector<Tensor>{pooled->forward_reference(x)}; });
    ASSERT_EQ(fast[0].sizes(), (std::vector<int64_t>{B, m + (summary_token ? 1 : 0), D})) << summary_token;
    expect_same(fast, reference);
  }
}

// The summary token follows the pooled ones: a linear map of the whole
// state, which every gene's value moves by its own weight.
TEST(SetPoolingTokens, EndWithTheSummaryToken) {
  at::manual_seed(5);
  constexpr int64_t G = 6, m = 2, D = 4;
  SetPoolingTokens pooled(G, m, D, 2, /*summary_token=*/true);
  EXPECT_EQ(pooled->n_tokens(), m + 1);
  const Tensor x = at::randn({3, G});
  const Tensor tokens = pooled->forward(x);  // (3, m + 1, D)
  auto p = pooled->named_parameters();
  for (int64_t b = 0; b < 3; ++b) {
    const Tensor summary = at::matmul(p["summary.weight"], x[b]) + p["summary.bias"];  // (D,)
    EXPECT_TRUE(at::allclose(tokens[b][m], summary, 1e-5, 1e-6)) << b;
  }
  // The pooled tokens are those of the same tokenizer without a summary token.
  at::manual_seed(5);
  SetPoolingTokens plain(G, m, D, 2);
  EXPECT_TRUE(at::allclose(plain->forward(x), tokens.narrow(1, 0, m), 1e-5, 1e-6));
}

TEST(SetUnpooling, ReadsOutLikeTheReferenceThatBuildsTheGeneTokens) {
  for (const int64_t n_summary : {0, 1}) {
    at::manual_seed(4);
    constexpr int64_t G = 9, m = 3, D = 8, B = 4;
    SetUnpooling unpool(G, D, 2, /*heads=*/2, n_summary);
    randomise(*unpool);
    const Tensor tokens = at::randn({B, m + n_summary, D}, at::kDouble);
    auto both = [](const GeneOutput& out) { return std::vector<Tensor>{out.value, out.scale}; };
    const auto fast = outputs_and_gradients(*unpool, [&] { return both(unpool->forward(tokens)); });
    const auto reference = outputs_and_gradients(*unpool, [&] { return both(unpool->forward_reference(tokens)); });
    ASSERT_EQ(fast[0].sizes(), (std::vector<int64_t>{B, G}));
    expect_same(fast, reference);
  }
}

// The summary token is attended to like the others and also read to every
// gene by its own map, which starts at zero.
TEST(SetUnpooling, ReadsTheSummaryTokenByItsOwnMap) {
  at::manual_seed(6);
  constexpr int64_t G = 5, m = 2, D = 4, B = 3;
  SetUnpooling unpool(G, D, 2, /*heads=*/2, /*n_summary=*/1);
  auto p = unpool->named_parameters();
  EXPECT_EQ(p["summary.weight"].abs().sum().item<float>(), 0.0f) << "starts at zero";
  {
    torch::NoGradGuard no_grad;
    for (auto& param : unpool->parameters()) param.copy_(at::randn(param.sizes()));
  }
  const Tensor tokens = at::randn({B, m + 1, D});
  const GeneOutput out = unpool->forward(tokens);
  // Without the map: the attention path alone, which sees the summary token too.
  const Tensor weight = p["summary.weight"].clone();  // (2 G, D)
  {
    torch::NoGradGuard no_grad;
    p["summary.weight"].zero_();
  }
  const GeneOutput attended = unpool->forward(tokens);
  const Tensor own = at::matmul(tokens.select(1, m), weight.t());  // (B, 2 G): value heads, then scale
  EXPECT_TRUE(at::allclose(out.value - attended.value, own.narrow(1, 0, G), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(out.scale - attended.scale, own.narrow(1, G, G), 1e-4, 1e-5));
  Tensor changed = tokens.clone();
  changed.select(1, m).add_(at::randn({B, D}));  // not a constant shift, which the layer's LayerNorm removes
  EXPECT_FALSE(at::allclose(unpool->forward(changed).value, attended.value, 1e-3, 1e-3)) << "attended to";
  EXPECT_TRUE(mentions(error_of([&] { SetUnpooling(G, D, 2, 2, /*n_summary=*/2); }), "0 or 1 summary tokens, not 2"));
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
