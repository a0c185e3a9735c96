// Rank tokens: the top-gene selection, the tokens by hand, and the readout
// that scatters each token back to the gene it stood for.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "decode/rank_readout.hpp"
#include "tokenize/rank_tokens.hpp"

using namespace exprflow;

TEST(RankTokens, TopGenesAreTheHighestFirstWithTiesToTheLowerIndex) {
  const Tensor x = at::tensor({0.5f, 2.0f, -1.0f, 2.0f, 0.0f,  //
                               3.0f, -2.0f, 1.0f, 0.0f, 1.0f})
                       .view({2, 5});
  const Tensor top = top_gene_indices(x, 3);
  EXPECT_TRUE(at::equal(top, at::tensor({1, 3, 0, 0, 7 - 5, 9 - 5}, at::kLong).view({2, 3})));
  EXPECT_THROW(top_gene_indices(x, 6), std::invalid_argument);
  EXPECT_THROW(top_gene_indices(x, 0), std::invalid_argument);
}

// The partial selection against the full stable sort, where ties matter:
// small integers (many genes share the k-th value, which the lower indices
// must win), continuous values, every gene (k = G), and a NaN.
TEST(RankTokens, TopGenesMatchTheStableSortDrawForDraw) {
  at::manual_seed(3);
  const Tensor integers = at::randint(0, 4, {64, 300}).to(at::kFloat);  // ~75 genes per value
  const Tensor continuous = at::randn({64, 300});
  for (const Tensor& x : {integers, continuous}) {
    for (int64_t k : {1, 7, 128, 299, 300}) {
      EXPECT_TRUE(at::equal(top_gene_indices(x, k), top_gene_indices_reference(x, k))) << k;
    }
  }
  Tensor with_nan = continuous.clone();
  with_nan[5][17] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(at::equal(top_gene_indices(with_nan, 128), top_gene_indices_reference(with_nan, 128)));
  EXPECT_THROW(top_gene_indices_reference(continuous, 301), std::invalid_argument);
}

TEST(RankTokens, TokenIsGenePlusValuePlusRankPosition) {
  at::manual_seed(1);
  RankTokens tokens(5, 3, 4);
  auto p = tokens->named_parameters();
  const Tensor x = at::randn({2, 5});
  const Tensor out = tokens->forward(x);  // (2, 3, 4)
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 4}));
  const Tensor top = top_gene_indices(x, 3);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t r = 0; r < 3; ++r) {
      const int64_t g = top[b][r].item<int64_t>();
      const Tensor expected = p["gene"][g] + x[b][g] * p["value"] + p["value_bias"] + p["position"][r];
      EXPECT_TRUE(at::allclose(out[b][r], expected, 1e-5, 1e-6)) << b << ", " << r;
      EXPECT_TRUE(at::allclose(tokens->content(x)[b][r], expected - p["position"][r], 1e-5, 1e-6));
    }
  }
  // What the network calls: the same tokens, and the genes they stand for.
  const TokenizedState state = tokens->tokenize(x);
  EXPECT_TRUE(at::equal(state.tokens, out));
  EXPECT_TRUE(at::equal(state.token_genes, top));
  // Fewer genes than n_top: every gene, ranked.
  EXPECT_EQ(RankTokens(5, 128, 4)->n_tokens(), 5);
}

TEST(RankReadout, EachTokenLandsOnItsGeneAndThePooledSequenceOnAll) {
  at::manual_seed(2);
  constexpr int64_t G = 6, k = 2, D = 3;
  RankReadout readout(G, k, D, /*heads=*/2);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : readout->parameters()) p.copy_(at::randn(p.sizes()));
  }
  auto p = readout->named_parameters();
  const Tensor x = at::randn({2, G});
  const Tensor tokens = at::randn({2, k, D});
  const GeneOutput out = readout->decode(tokens, x);
  ASSERT_TRUE(out.scale.defined());
  const Tensor top = top_gene_indices(x, k);
  for (int64_t b = 0; b < 2; ++b) {
    // (heads * G): the pooled map of the tokens' mean, then each head's own readout at its gene.
    Tensor expected = at::matmul(p["pooled.weight"], tokens[b].mean(0)) + p["pooled.bias"];  // (2G,)
    expected = expected.view({2, G}).clone();
    for (int64_t r = 0; r < k; ++r) {
      const int64_t g = top[b][r].item<int64_t>();
      expected.select(1, g) += at::matmul(p["own.weight"], tokens[b][r]);  // (2,)
    }
    EXPECT_TRUE(at::allclose(out.value[b], expected[0], 1e-5, 1e-6)) << b;
    EXPECT_TRUE(at::allclose(out.scale[b], expected[1], 1e-5, 1e-6)) << b;
  }
  // Given the tokenizer's selection, the readout puts the tokens there and
  // does not select again: the same output for the same genes, and for other
  // genes the tokens land on those.
  EXPECT_TRUE(at::equal(readout->decode(tokens, x, top).value, out.value));
  const Tensor others = at::tensor({5, 4, 4, 5}, at::kLong).view({2, k});  // (2, k), not x's top genes
  ASSERT_FALSE(at::equal(others, top));
  const Tensor placed = readout->decode(tokens, x, others).value;          // (2, G)
  for (int64_t b = 0; b < 2; ++b) {
    Tensor expected = (at::matmul(p["pooled.weight"], tokens[b].mean(0)) + p["pooled.bias"]).view({2, G}).clone();
    for (int64_t r = 0; r < k; ++r) {
      expected.select(1, others[b][r].item<int64_t>()) += at::matmul(p["own.weight"], tokens[b][r]);  // (2,)
    }
    EXPECT_TRUE(at::allclose(placed[b], expected[0], 1e-5, 1e-6)) << b;
  }
  EXPECT_THROW(readout->forward(tokens), std::invalid_argument);
  EXPECT_THROW(readout->decode(at::randn({2, k + 1, D}), x), std::invalid_argument);
  EXPECT_THROW(readout->decode(tokens, x, others.narrow(1, 0, 1)), std::invalid_argument);
}

// The summary token ends the sequence: a linear map of the whole state, with
// a position of its own; the ranked genes stay as they were.
TEST(RankTokens, SummaryTokenIsALinearMapOfTheWholeState) {
  at::manual_seed(4);
  RankTokens tokens(6, 3, 4, /*summary_token=*/true);
  auto p = tokens->named_parameters();
  EXPECT_EQ(tokens->n_tokens(), 4);
  const Tensor x = at::randn({2, 6});
  const TokenizedState state = tokens->tokenize(x);
  ASSERT_EQ(state.tokens.sizes(), (std::vector<int64_t>{2, 4, 4}));
  EXPECT_TRUE(at::equal(state.token_genes, top_gene_indices(x, 3)));
  for (int64_t b = 0; b < 2; ++b) {
    const Tensor summary = at::matmul(p["summary.weight"], x[b]) + p["summary.bias"];  // (D,)
    EXPECT_TRUE(at::allclose(state.tokens[b][3], summary + p["summary_position"], 1e-5, 1e-6)) << b;
    EXPECT_TRUE(at::allclose(tokens->content(x)[b][3], summary, 1e-5, 1e-6)) << b;
    const int64_t g = state.token_genes[b][0].item<int64_t>();
    EXPECT_TRUE(at::allclose(state.tokens[b][0], p["gene"][g] + x[b][g] * p["value"] + p["value_bias"] + p["position"][0],
                             1e-5, 1e-6));
  }
  // A change in a gene outside the sequence reaches the summary token only.
  const int64_t outside =
      at::ones({6}, at::kBool).index_fill_(0, state.token_genes[0], false).nonzero()[0][0].item<int64_t>();
  Tensor moved = x.clone();
  moved[0][outside] -= 0.5;  // lower: it stays out of the top 3
  const Tensor after = tokens->forward(moved);
  EXPECT_TRUE(at::equal(after[0].narrow(0, 0, 3), state.tokens[0].narrow(0, 0, 3)));
  EXPECT_FALSE(at::allclose(after[0][3], state.tokens[0][3]));
}

TEST(RankReadout, TheSummaryTokenIsReadToAllGenesByItsOwnMap) {
  at::manual_seed(5);
  constexpr int64_t G = 6, k = 2, D = 3;
  RankReadout readout(G, k, D, /*heads=*/1, /*n_summary=*/1);
  auto p = readout->named_parameters();
  for (const auto& item : p) EXPECT_EQ(item.value().abs().sum().item<float>(), 0.0f) << item.key();  // zero start
  {
    torch::NoGradGuard no_grad;
    for (auto& q : readout->parameters()) q.copy_(at::randn(q.sizes()));
  }
  const Tensor x = at::randn({2, G});
  const Tensor tokens = at::randn({2, k + 1, D});
  const Tensor top = top_gene_indices(x, k);
  const Tensor out = readout->decode(tokens, x, top).value;  // (2, G)
  for (int64_t b = 0; b < 2; ++b) {
    // Pooled: the ranked tokens' mean only; the summary token by its own map.
    Tensor expected = at::matmul(p["pooled.weight"], tokens[b].narrow(0, 0, k).mean(0)) + p["pooled.bias"] +
                      at::matmul(p["summary.weight"], tokens[b][k]);  // (G,)
    for (int64_t r = 0; r < k; ++r) expected[top[b][r].item<int64_t>()] += at::matmul(p["own.weight"], tokens[b][r])[0];
    EXPECT_TRUE(at::allclose(out[b], expected, 1e-5, 1e-6)) << b;
  }
  EXPECT_THROW(readout->decode(tokens.narrow(1, 0, k), x, top), std::invalid_argument);
  EXPECT_THROW(RankReadout(G, k, D, 1, 2), std::invalid_argument);
}
