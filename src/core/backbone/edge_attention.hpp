// Attention restricted to the edges of a gene graph (backbone/edge_graph.hpp):
// target gene i attends only to its sources j (regulators and itself),
//
//   out_i = sum_j softmax_j(q_i . k_j / sqrt(Dh)) v_j,   j in sources(i),
//
// in O(edges) time and memory instead of O(genes^2).
//
// Three implementations with one contract, q, k, v (B, H, G, Dh) -> (B, H, G, Dh):
// - edge_attention_dense_reference(): the dense masked attention, the
//   definition the others are tested against (G x G scores; small G only);
// - edge_attention_gather(): plain ATen, any device: gathers the scores of
//   every edge (B, H, E), a segment softmax per target (scatter max / sum),
//   messages scatter-added to targets; autograd gives the backward;
//   O(B H E Dh) temporaries;
// - the fused CPU kernel: per (cell, head) one pass over each target's
//   sources with an online softmax, keeping only the output and each target's
//   log-sum-exp; its backward recomputes the probabilities edge by edge.
//   No (B, H, E, Dh) tensor exists in either direction.
// - the fused CUDA kernel (kernels/cuda/edge_attention.cu): the same two
//   passes, one warp per (cell, head, target gene); built with CUDA only.
// edge_attention() picks the fused kernel of the tensors' device for float32
// tensors (CPU, or CUDA where built and Dh <= kMaxCudaHeadDim), the gather
// version otherwise.
#pragma once

#include "backbone/edge_graph.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// The graph's index tensors on a device, built once per module.
struct EdgeIndex {
  Tensor offsets;  // (G + 1,) int64, CSR by target
  Tensor sources;  // (E,) int64
  Tensor targets;  // (E,) int64: the target of each edge (offsets expanded)
  bool cell_node = false;  // the last node is the cell's (EdgeGraph::with_cell_node())

  static EdgeIndex of(const EdgeGraph& graph);
};

Tensor edge_attention_dense_reference(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph);
Tensor edge_attention_gather(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph);
Tensor edge_attention_fused_cpu(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph);
// The CUDA kernel's largest head dimension (32 lanes x 4 values).
inline constexpr int64_t kMaxCudaHeadDim = 128;
Tensor edge_attention_fused_cuda(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph);
Tensor edge_attention(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph);

}  // namespace exprflow
