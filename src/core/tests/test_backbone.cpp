// Backbone stage: attention (the fast path against the plain reference, with
// and without an additive ALiBi bias), DiT blocks with adaLN-Zero, final
// modulation.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "backbone/alibi.hpp"
#include "backbone/attention.hpp"
#include "backbone/cell_set_dit.hpp"
#include "backbone/dit.hpp"
#include "backbone/dit_block.hpp"
#include "backbone/edge_attention.hpp"
#include "backbone/edge_graph.hpp"
#include "backbone/learned_graph_dit.hpp"
#include "error_message.hpp"

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

// On a GPU the fast path is LibTorch's fused attention (flash / memory-
// efficient kernels); it must agree with the plain reference there too.
TEST(Attention, MatchesReferenceOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(2);
  const auto cuda = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  Tensor q = at::randn({4, 4, 33, 16}, cuda), k = at::randn({4, 4, 33, 16}, cuda), v = at::randn({4, 4, 33, 16}, cuda);
  Tensor bias = at::randn({1, 4, 33, 33}, cuda);
  for (const Tensor& b : {Tensor(), bias}) {
    Tensor fast = attention(q, k, v, b);
    Tensor ref = attention_reference(q, k, v, b);
    ASSERT_TRUE(fast.is_cuda());
    EXPECT_TRUE(at::allclose(fast, ref, 1e-3, 1e-4)) << "max difference " << (fast - ref).abs().max().item<float>();
  }
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

TEST(Attention, MatchesReferenceWithBias) {
  at::manual_seed(5);
  // Cross-attention shapes: 3 CLS + 6 gene queries over 6 gene keys.
  Tensor q = at::randn({2, 4, 9, 8}), k = at::randn({2, 4, 6, 8}), v = at::randn({2, 4, 6, 8});
  Tensor q_pos = at::cat({at::full({3}, std::numeric_limits<float>::quiet_NaN()), at::arange(6).to(at::kFloat)});
  Tensor alibi = alibi_bias(4, q_pos, at::arange(6).to(at::kFloat));  // (4, 9, 6), broadcast over the batch
  Tensor full = at::randn({2, 4, 9, 6});                             // one bias per batch item
  for (const Tensor& bias : {alibi, full}) {
    Tensor fast = attention(q, k, v, bias);
    Tensor ref = attention_reference(q, k, v, bias);
    ASSERT_EQ(fast.sizes(), q.sizes());
    EXPECT_TRUE(at::allclose(fast, ref, 1e-5, 1e-6)) << "max difference " << (fast - ref).abs().max().item<float>();
    // The bias matters.
    EXPECT_FALSE(at::allclose(ref, attention_reference(q, k, v), 1e-3, 1e-3));
    // Weights: rows sum to 1, weights @ v is the reference output, and the
    // weights path of attention() hands out the same weights.
    Tensor p = attention_probabilities(q, k, bias);  // (2, 4, 9, 6)
    EXPECT_TRUE(at::allclose(p.sum(-1), at::ones({2, 4, 9}), 1e-5, 1e-6));
    EXPECT_TRUE(at::allclose(at::matmul(p, v), ref, 1e-5, 1e-6));
    Tensor handed;
    Tensor with_weights = attention(q, k, v, bias, &handed);
    EXPECT_TRUE(at::equal(handed, p));
    EXPECT_TRUE(at::allclose(with_weights, ref, 1e-5, 1e-6));
  }
  // Without a bias: plain attention, also when the weights are asked for.
  Tensor handed;
  EXPECT_TRUE(at::allclose(attention(q, k, v, Tensor(), &handed), attention_reference(q, k, v), 1e-5, 1e-6));
  EXPECT_TRUE(at::equal(handed, attention_probabilities(q, k)));
}

TEST(Attention, BiasShiftsWeightsByHand) {
  // One head, width 1, q = 0: scores are all zero, so weights = softmax(bias).
  Tensor q = at::zeros({1, 1, 1, 1}), k = at::tensor(std::vector<float>{1, 2}).view({1, 1, 2, 1});
  Tensor v = at::tensor(std::vector<float>{10, 20}).view({1, 1, 2, 1});
  Tensor bias = at::tensor(std::vector<float>{0.0f, -std::log(3.0f)}).view({1, 1, 2});
  EXPECT_NEAR(attention(q, k, v, bias).item<float>(), 10 * 0.75 + 20 * 0.25, 1e-4);
  EXPECT_NEAR(attention_reference(q, k, v, bias).item<float>(), 12.5, 1e-4);
}

TEST(Attention, SplitAndMergeHeads) {
  Tensor x = at::arange(2 * 3 * 8).to(at::kFloat).view({2, 3, 8});  // (B, T, D)
  Tensor h = split_heads(x, 4);                                      // (B, H, T, Dh)
  ASSERT_EQ(h.sizes(), (std::vector<int64_t>{2, 4, 3, 2}));
  // Head 1 of token 2 holds features 2..3 of that token.
  EXPECT_TRUE(at::equal(h[1][1][2], x[1][2].slice(0, 2, 4)));
  EXPECT_TRUE(at::equal(merge_heads(h), x));
  EXPECT_THROW(check_heads(10, 3, "d_model", "n_heads"), std::invalid_argument);
  EXPECT_THROW(check_heads(8, 0, "d_model", "n_heads"), std::invalid_argument);
  EXPECT_NO_THROW(check_heads(8, 4, "d_model", "n_heads"));
}

TEST(Alibi, BiasByHand) {
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
  EXPECT_THROW(alibi_slopes(0), std::invalid_argument);
}

TEST(SelfAttention, IsPlainMultiHeadAttentionOfItsProjections) {
  // The DiT's parameters (names and shapes) and function: fused q/k/v
  // projection, per-head softmax attention, output projection.
  at::manual_seed(6);
  const int64_t B = 2, T = 5, D = 12, H = 3, Dh = D / H;
  SelfAttention attn(D, H);
  auto params = attn->named_parameters();
  ASSERT_EQ(params.size(), 4u);
  ASSERT_EQ(params["qkv.weight"].sizes(), (std::vector<int64_t>{3 * D, D}));
  ASSERT_EQ(params["proj.weight"].sizes(), (std::vector<int64_t>{D, D}));
  Tensor x = at::randn({B, T, D});
  Tensor qkv = at::linear(x, params["qkv.weight"], params["qkv.bias"]);  // (B, T, 3D): q, k, v blocks of D
  auto heads = [&](int64_t part) {
    return qkv.slice(2, part * D, (part + 1) * D).view({B, T, H, Dh}).transpose(1, 2);  // (B, H, T, Dh)
  };
  Tensor out = attention_reference(heads(0), heads(1), heads(2)).transpose(1, 2).reshape({B, T, D});
  Tensor expected = at::linear(out, params["proj.weight"], params["proj.bias"]);  // (B, T, D)
  Tensor y = attn->forward(x);
  EXPECT_TRUE(at::allclose(y, expected, 1e-5, 1e-6)) << "max difference " << (y - expected).abs().max().item<float>();
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

// Recomputing each block's activations in backward must give the very
// gradients of the ordinary pass: parameters, tokens and condition alike
// (with attention along a gene graph, as grn_dit uses it, with and without
// its cell node, and with the node's summary start).
TEST(DiT, CheckpointedBlocksGiveTheGradientsOfTheOrdinaryPass) {
  constexpr int64_t kGenes = 6, kDim = 8;
  const EdgeGraph network = EdgeGraph::from_pairs({{0, 1}, {2, 1}, {1, 2}, {4, 5}, {5, 4}, {0, 5}}, kGenes);
  for (const int variant : {0, 1, 2}) {  // no cell node, a cell node, a cell node with cell_node_summary
    SCOPED_TRACE(variant);
    auto graph = std::make_shared<EdgeIndex>(EdgeIndex::of(variant ? network.with_cell_node() : network));
    DiT plain(kDim, 2, 2, 2.0, graph, /*checkpoint_blocks=*/false, "adaln", variant == 2);
    DiT checkpointed(kDim, 2, 2, 2.0, graph, /*checkpoint_blocks=*/true, "adaln", variant == 2);
    {
      // adaLN-Zero starts every gate at zero; random weights make every
      // parameter take part.
      torch::NoGradGuard no_grad;
      at::manual_seed(3);
      auto target = checkpointed->parameters();
      auto source = plain->parameters();
      for (size_t i = 0; i < source.size(); ++i) {
        source[i].copy_(at::randn(source[i].sizes()) * 0.3);
        target[i].copy_(source[i]);
      }
    }
    auto run = [&](DiT& net) {
      at::manual_seed(4);
      Tensor x = at::randn({3, kGenes, kDim}).requires_grad_();  // (B, T, D)
      Tensor c = at::randn({3, kDim}).requires_grad_();          // (B, D)
      Tensor y = net->forward(x, c);
      (y * at::linspace(-1, 1, y.numel()).view(y.sizes())).sum().backward();
      std::vector<Tensor> out{y.detach(), x.grad(), c.grad()};
      for (const auto& p : net->parameters()) out.push_back(p.grad().clone());
      return out;
    };
    const std::vector<Tensor> expected = run(plain);
    const std::vector<Tensor> actual = run(checkpointed);
    ASSERT_EQ(expected.size(), actual.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_TRUE(actual[i].defined()) << "tensor " << i;
      EXPECT_TRUE(at::allclose(actual[i], expected[i], 1e-5, 1e-6)) << "tensor " << i;
    }
    // Where no backward follows (sampling), the blocks run as usual.
    torch::NoGradGuard no_grad;
    at::manual_seed(5);
    Tensor x = at::randn({2, kGenes, kDim});
    Tensor c = at::randn({2, kDim});
    EXPECT_TRUE(at::equal(checkpointed->forward(x, c), plain->forward(x, c)));
  }
}

// Genes 2 and 3 are outside the network: without a cell node, gene 2's
// output cannot depend on gene 3's token; with one it does, through the cell
// token, which leaves the sequence (one output per gene).
TEST(DiT, CellNodeLetsGenesOutsideTheNetworkSeeTheCell) {
  constexpr int64_t kGenes = 4, kDim = 8;
  const EdgeGraph network = EdgeGraph::from_pairs({{0, 1}}, kGenes);
  const auto gradient_of_gene_2_by_gene_3 = [&](const EdgeGraph& graph) {
    at::manual_seed(7);
    DiT net(kDim, 2, 2, 2.0, std::make_shared<EdgeIndex>(EdgeIndex::of(graph)));
    {
      torch::NoGradGuard no_grad;  // random weights: adaLN-Zero's closed gates would hide the attention
      for (auto& p : net->parameters()) p.copy_(at::randn(p.sizes()) * 0.5);
    }
    Tensor x = at::randn({2, kGenes, kDim}).requires_grad_();  // (B, G, D)
    Tensor y = net->forward(x, at::randn({2, kDim}));           // (B, G, D)
    EXPECT_EQ(y.sizes(), x.sizes());
    y.select(1, 2).sum().backward();
    return x.grad().select(1, 3).abs().max().item<double>();
  };
  EXPECT_EQ(gradient_of_gene_2_by_gene_3(network), 0.0);
  EXPECT_GT(gradient_of_gene_2_by_gene_3(network.with_cell_node()), 1e-4);
}

// cell_node_summary starts the cell node as sum_g w_g * token_g: with every
// weight 1/G it is the mean start exactly, and with other weights the node
// (hence every gene, through it) sees the genes by their own weights.
TEST(DiT, CellNodeSummaryIsAWeightedSumOfTheGeneTokens) {
  constexpr int64_t kGenes = 5, kDim = 8;
  auto graph = std::make_shared<EdgeIndex>(EdgeIndex::of(EdgeGraph::from_pairs({{0, 1}}, kGenes).with_cell_node()));
  DiT mean_start(kDim, 2, 2, 2.0, graph);
  DiT summary_start(kDim, 2, 2, 2.0, graph, false, "adaln", /*cell_node_summary=*/true);
  ASSERT_EQ(summary_start->parameters().size(), mean_start->parameters().size() + 1);
  Tensor weights = summary_start->named_parameters()["cell_weights"];  // shares the parameter's storage
  ASSERT_EQ(weights.sizes(), (std::vector<int64_t>{kGenes, kDim}));
  {
    torch::NoGradGuard no_grad;
    at::manual_seed(11);  // random weights: adaLN-Zero's closed gates would hide the attention
    for (auto& [name, p] : mean_start->named_parameters().pairs()) {
      p.copy_(at::randn(p.sizes()) * 0.5);
      summary_start->named_parameters()[name].copy_(p);
    }
    weights.fill_(1.0 / kGenes);
  }
  torch::NoGradGuard no_grad;
  at::manual_seed(12);
  const Tensor x = at::randn({3, kGenes, kDim}), c = at::randn({3, kDim});  // (B, G, D), (B, D)
  EXPECT_TRUE(at::allclose(summary_start->forward(x, c), mean_start->forward(x, c), 1e-5, 1e-6));
  // Only gene 3 counts in the start. After the first block the node has
  // attended to every gene, so use one block: gene 2 (outside the network)
  // sees gene 3 through the node, and not gene 4.
  DiT one_block(kDim, 1, 2, 2.0, graph, false, "adaln", /*cell_node_summary=*/true);
  for (auto& [name, p] : one_block->named_parameters().pairs()) p.copy_(summary_start->named_parameters()[name]);
  one_block->named_parameters()["cell_weights"].zero_().select(0, 3).fill_(1.0);
  const Tensor before = one_block->forward(x, c);  // (B, G, D)
  const auto change_of_gene_2_by = [&](int64_t gene) {
    Tensor moved = x.clone();
    moved.select(1, gene).add_(at::randn({kDim}));  // not a constant shift, which LayerNorm removes
    return (one_block->forward(moved, c) - before).select(1, 2).abs().max().item<double>();
  };
  EXPECT_GT(change_of_gene_2_by(3), 1e-4);
  EXPECT_EQ(change_of_gene_2_by(4), 0.0);
  EXPECT_TRUE(mentions(error_of([&] { DiT(kDim, 1, 2, 2.0, nullptr, false, "adaln", true); }), "cell_node_summary"));
}

// The learned token graph: each token keeps itself and its `degree`
// strongest sources, and a token outside a row's sources cannot reach it.
TEST(CellSetDiT, EachCellAttendsOnlyToTheCellsOfItsSet) {
  constexpr int64_t B = 7, T = 2, D = 8;
  at::manual_seed(9);
  CellSetDiT net(D, /*n_layers=*/2, /*n_heads=*/2, 2.0, /*set_size=*/2);
  {
    // Random weights: adaLN-Zero's closed gates would hide the attention.
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.copy_(at::randn(p.sizes()) * 0.5);
  }
  // Groups {0, 2, 6}, {3}, {1, 5}, {4} cut into sets of 2: {0, 2}, {6}, {3}, {1, 5}, {4}.
  const std::vector<std::vector<int64_t>> groups = {{4}, {0, 2, 6}, {3}, {1, 5}};
  const std::vector<int64_t> set = {1, 4, 1, 3, 0, 4, 2};
  const Tensor x = at::randn({B, T, D}), c = at::randn({B, D});
  const Tensor y = net->forward_groups(x, c, groups);  // (B, T, D)
  EXPECT_EQ(y.sizes(), x.sizes());
  for (int64_t j = 0; j < B; ++j) {
    Tensor moved = x.clone();
    moved.select(0, j).add_(at::randn({T, D}));
    const Tensor changed = (net->forward_groups(moved, c, groups) - y).abs().amax({1, 2}) > 1e-4;  // (B,)
    for (int64_t i = 0; i < B; ++i) {
      EXPECT_EQ(changed[i].item<bool>(), set[i] == set[j]) << "cell " << i << ", moved cell " << j;
    }
  }
  // The same as running every set on its own.
  for (const std::vector<int64_t>& members : std::vector<std::vector<int64_t>>{{0, 2}, {1, 5}, {6}}) {
    const Tensor index = at::tensor(members);
    const Tensor alone = net->forward(x.index_select(0, index), c.index_select(0, index));
    EXPECT_TRUE(at::allclose(alone, y.index_select(0, index), 1e-4, 1e-5));
  }
  // Without groups: one group of the whole batch, cut in batch order.
  const Tensor whole = net->forward(x, c);
  EXPECT_TRUE(at::allclose(whole.narrow(0, 0, 2), net->forward(x.narrow(0, 0, 2), c.narrow(0, 0, 2)), 1e-4, 1e-5));
  EXPECT_THROW(CellSetDiT(D, 1, 2, 2.0, 0), std::invalid_argument);
}

TEST(LearnedGraphDiT, EachTokenAttendsOnlyToItsStrongestSources) {
  constexpr int64_t T = 6, D = 8, degree = 2;
  at::manual_seed(7);
  LearnedGraphDiT net(T, D, /*n_layers=*/1, /*n_heads=*/2, 2.0, degree);
  {
    // Random weights: adaLN-Zero's closed gates would hide the attention.
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.copy_(at::randn(p.sizes()));
  }
  const Tensor bias = net->attention_bias();  // (T, T)
  const Tensor kept = at::isfinite(bias);
  EXPECT_TRUE(at::equal(kept.sum(1), at::full({T}, degree + 1, at::kLong)));
  EXPECT_TRUE(kept.diagonal().all().item<bool>());
  const Tensor logits = net->named_parameters()["edge_logits"];
  for (int64_t i = 0; i < T; ++i) {
    // Every kept source beats every dropped one (the diagonal aside).
    for (int64_t j = 0; j < T; ++j) {
      for (int64_t k = 0; k < T; ++k) {
        if (j == i || k == i || !kept[i][j].item<bool>() || kept[i][k].item<bool>()) continue;
        EXPECT_GE(logits[i][j].item<float>(), logits[i][k].item<float>());
      }
    }
  }
  EXPECT_TRUE(at::allclose(net->adjacency().masked_select(kept), at::sigmoid(logits).masked_select(kept)));
  // One block: token i's output moves with its sources only.
  const Tensor x = at::randn({2, T, D}), c = at::randn({2, D});
  const Tensor y = net->forward(x, c);
  for (int64_t j = 0; j < T; ++j) {
    Tensor moved = x.clone();
    moved.select(1, j).add_(at::randn({2, D}));  // not a constant: LayerNorm would remove that
    const Tensor changed = (net->forward(moved, c) - y).abs().amax({0, 2}) > 1e-5;  // (T,)
    EXPECT_TRUE(at::equal(changed, kept.select(1, j))) << "token " << j;
  }
  EXPECT_THROW(net->forward(at::randn({2, T + 1, D}), c), std::invalid_argument);
}
