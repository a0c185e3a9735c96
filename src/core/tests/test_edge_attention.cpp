// Attention along the edges of a gene graph: the graph's layout, and the fused
// CPU kernel and the gather version against the dense masked reference,
// values and gradients.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "backbone/attention.hpp"
#include "backbone/edge_attention.hpp"
#include "backbone/edge_graph.hpp"
#include "error_message.hpp"

using namespace exprflow;

namespace {

constexpr int64_t kGenes = 7;

// Gene 6 has no regulator; 0 -> 1 appears twice; 3 -> 3 is a self-edge.
EdgeGraph small_graph() {
  return EdgeGraph::from_pairs({{0, 1}, {2, 1}, {0, 1}, {1, 2}, {3, 3}, {4, 5}, {5, 4}, {0, 5}, {2, 3}}, kGenes);
}

struct Qkv {
  Tensor q, k, v;
};

Qkv random_qkv(int64_t genes, uint64_t seed) {
  at::manual_seed(seed);
  // ATen factories ignore requires_grad in their options: set it after.
  auto leaf = [genes] { return at::randn({2, 3, genes, 4}).requires_grad_(); };
  return {leaf(), leaf(), leaf()};
}

// d(sum(out * w))/d(q, k, v) for one implementation.
std::vector<Tensor> gradients(Tensor (*attend)(const Tensor&, const Tensor&, const Tensor&, const EdgeIndex&),
                              const Qkv& in, const EdgeIndex& graph, const Tensor& w) {
  for (const Tensor& t : {in.q, in.k, in.v}) t.mutable_grad() = Tensor();
  (attend(in.q, in.k, in.v, graph) * w).sum().backward();
  return {in.q.grad().clone(), in.k.grad().clone(), in.v.grad().clone()};
}

}  // namespace

TEST(EdgeGraph, StoresSourcesByTargetWithSelfLoops) {
  const EdgeGraph g = small_graph();
  EXPECT_EQ(g.n_network_edges, 7);  // 9 pairs less a duplicate and a self-edge
  EXPECT_EQ(g.n_edges(), 7 + kGenes);
  EXPECT_EQ(g.offsets, (std::vector<int64_t>{0, 1, 4, 6, 8, 10, 13, 14}));
  EXPECT_EQ(g.sources, (std::vector<int64_t>{0, 0, 1, 2, 1, 2, 2, 3, 4, 5, 0, 4, 5, 6}));
  const EdgeIndex index = EdgeIndex::of(g);
  EXPECT_EQ(index.targets[3].item<int64_t>(), 1);
  EXPECT_EQ(index.targets[13].item<int64_t>(), 6);
}

TEST(EdgeGraph, CellNodeIsASourceOfEveryGeneAndAttendsToAll) {
  const EdgeGraph g = small_graph().with_cell_node();  // node 7 is the cell's
  EXPECT_TRUE(g.cell_node);
  EXPECT_EQ(g.n_genes, kGenes + 1);
  EXPECT_EQ(g.n_network_edges, 7);
  EXPECT_EQ(g.n_edges(), 7 + kGenes + kGenes + (kGenes + 1));
  EXPECT_EQ(g.offsets, (std::vector<int64_t>{0, 2, 6, 9, 12, 15, 19, 21, 29}));
  EXPECT_EQ(g.sources, (std::vector<int64_t>{0, 7, 0, 1, 2, 7, 1, 2, 7, 2, 3, 7, 4, 5, 7, 0, 4, 5, 7, 6, 7,
                                             0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(EdgeIndex::of(g).cell_node);
  EXPECT_TRUE(mentions(error_of([&] { g.with_cell_node(); }), "has a cell node already"));
}

TEST(EdgeGraph, RefusesWhatIsNotAnEdgeList) {
  EXPECT_TRUE(mentions(error_of([] { EdgeGraph::from_pairs({{0, 9}}, kGenes); }), "outside 0..6"));
  EXPECT_TRUE(mentions(error_of([] { EdgeGraph::from_resources(Resources{}, kGenes); }), "needs the resource 'grn'"));
  Resources r;
  r["grn"] = {{2, 3}, {0, 1, 2, 3, 4, 5}, {}, {}};
  EXPECT_TRUE(mentions(error_of([&] { EdgeGraph::from_resources(r, kGenes); }), "edges x 2"));
  r["grn"] = {{1, 2}, {0.5f, 1}, {}, {}};
  EXPECT_TRUE(mentions(error_of([&] { EdgeGraph::from_resources(r, kGenes); }), "whole gene indices"));
  r["grn"] = {{2, 2}, {0, 1, 2, 1}, {}, {}};
  EXPECT_EQ(EdgeGraph::from_resources(r, kGenes).n_network_edges, 2);
}

TEST(EdgeAttention, FusedAndGatherMatchTheDenseMaskedReference) {
  const EdgeIndex graph = EdgeIndex::of(small_graph());
  const Qkv in = random_qkv(kGenes, 1);
  const Tensor expected = edge_attention_dense_reference(in.q, in.k, in.v, graph);  // (2, 3, 7, 4)
  EXPECT_TRUE(at::allclose(edge_attention_fused_cpu(in.q, in.k, in.v, graph), expected, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(edge_attention_gather(in.q, in.k, in.v, graph), expected, 1e-5, 1e-6));
  EXPECT_TRUE(at::equal(edge_attention(in.q, in.k, in.v, graph), edge_attention_fused_cpu(in.q, in.k, in.v, graph)));
  // Gene 6 has only itself to attend to.
  EXPECT_TRUE(at::allclose(expected.select(2, 6), in.v.select(2, 6)));
  // Non-contiguous inputs (a transposed layout) give the same result.
  const Tensor qt = in.q.transpose(0, 1).contiguous().transpose(0, 1);
  EXPECT_FALSE(qt.is_contiguous());
  EXPECT_TRUE(at::allclose(edge_attention_fused_cpu(qt, in.k, in.v, graph), expected, 1e-5, 1e-6));
}

TEST(EdgeAttention, FusedAndGatherGradientsMatchTheReference) {
  const EdgeIndex graph = EdgeIndex::of(small_graph());
  const Qkv in = random_qkv(kGenes, 2);
  const Tensor w = at::randn({2, 3, kGenes, 4});
  const auto expected = gradients(edge_attention_dense_reference, in, graph, w);
  for (auto attend : {edge_attention_fused_cpu, edge_attention_gather}) {
    const auto got = gradients(attend, in, graph, w);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_TRUE(at::allclose(got[i], expected[i], 1e-4, 1e-5))
          << "gradient " << i << " differs by " << (got[i] - expected[i]).abs().max().item<float>();
    }
  }
}

TEST(EdgeAttention, OnACompleteGraphIsPlainAttention) {
  std::vector<std::pair<int64_t, int64_t>> all;
  for (int64_t i = 0; i < kGenes; ++i) {
    for (int64_t j = 0; j < kGenes; ++j) all.emplace_back(j, i);
  }
  const EdgeIndex graph = EdgeIndex::of(EdgeGraph::from_pairs(all, kGenes));
  const Qkv in = random_qkv(kGenes, 3);
  EXPECT_TRUE(at::allclose(edge_attention_fused_cpu(in.q, in.k, in.v, graph),
                           attention_reference(in.q, in.k, in.v), 1e-5, 1e-6));
}

TEST(EdgeAttention, RefusesMismatchedShapes) {
  const EdgeIndex graph = EdgeIndex::of(small_graph());
  const Tensor x = at::randn({1, 1, kGenes + 1, 4});
  EXPECT_TRUE(mentions(error_of([&] { edge_attention_fused_cpu(x, x, x, graph); }), "8 gene tokens for a graph of 7"));
  const Tensor y = at::randn({1, 1, kGenes, 4}), z = at::randn({1, 1, kGenes, 2});
  EXPECT_TRUE(mentions(error_of([&] { edge_attention_gather(y, y, z, graph); }), "one shape"));
}
