#include "backbone/edge_attention.hpp"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "backbone/attention.hpp"
#include "kernels/cuda/launchers.hpp"
#include "runtime/cuda_stream.hpp"

namespace exprflow {

namespace {

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph) {
  if (q.dim() != 4 || !q.sizes().equals(k.sizes()) || !q.sizes().equals(v.sizes())) {
    throw std::invalid_argument("edge attention needs q, k, v of one shape (B, H, G, Dh)");
  }
  if (q.size(2) + 1 != graph.offsets.numel()) {
    throw std::invalid_argument("edge attention: " + std::to_string(q.size(2)) + " gene tokens for a graph of " +
                                std::to_string(graph.offsets.numel() - 1) + " genes");
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

void add_scaled(float* out, const float* x, float w, int64_t n) {
  for (int64_t d = 0; d < n; ++d) out[d] += w * x[d];
}

// One (cell, head) slice at a time, in parallel over the slices: each slice's
// outputs and gradients are its own, so no two threads write one element.
struct Slices {
  int64_t count, genes, dim;
  const int64_t* offsets;
  const int64_t* sources;
  float scale;
};

Slices slices_of(const Tensor& q, const EdgeIndex& graph) {
  return {q.size(0) * q.size(1), q.size(2), q.size(3), graph.offsets.data_ptr<int64_t>(),
          graph.sources.data_ptr<int64_t>(), static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3))))};
}

// out (B, H, G, Dh) and lse (B, H, G) from contiguous q, k, v.
void fused_forward(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph, Tensor& out,
                   Tensor& lse) {
  const Slices s = slices_of(q, graph);
  const float *Q = q.data_ptr<float>(), *K = k.data_ptr<float>(), *V = v.data_ptr<float>();
  float *O = out.data_ptr<float>(), *L = lse.data_ptr<float>();
  at::parallel_for(0, s.count, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> scores;
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t base = bh * s.genes * s.dim;
      for (int64_t i = 0; i < s.genes; ++i) {
        const float* qi = Q + base + i * s.dim;
        float* oi = O + base + i * s.dim;
        const int64_t first = s.offsets[i], last = s.offsets[i + 1];
        scores.resize(last - first);
        float top = -std::numeric_limits<float>::infinity();
        for (int64_t e = first; e < last; ++e) {
          scores[e - first] = dot(qi, K + base + s.sources[e] * s.dim, s.dim) * s.scale;
          top = std::max(top, scores[e - first]);
        }
        float total = 0.0f;
        for (int64_t d = 0; d < s.dim; ++d) oi[d] = 0.0f;
        for (int64_t e = first; e < last; ++e) {
          const float w = std::exp(scores[e - first] - top);
          total += w;
          add_scaled(oi, V + base + s.sources[e] * s.dim, w, s.dim);
        }
        for (int64_t d = 0; d < s.dim; ++d) oi[d] /= total;
        L[bh * s.genes + i] = top + std::log(total);
      }
    }
  });
}

// Gradients of q, k, v given the forward's inputs, output, log-sum-exp and
// the output's gradient (all contiguous). The probability of edge (i, j) is
// recomputed as exp(q_i . k_j * scale - lse_i).
void fused_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                    const Tensor& grad_out, const EdgeIndex& graph, Tensor& dq, Tensor& dk, Tensor& dv) {
  const Slices s = slices_of(q, graph);
  const float *Q = q.data_ptr<float>(), *K = k.data_ptr<float>(), *V = v.data_ptr<float>();
  const float *O = out.data_ptr<float>(), *L = lse.data_ptr<float>(), *dO = grad_out.data_ptr<float>();
  float *dQ = dq.data_ptr<float>(), *dK = dk.data_ptr<float>(), *dV = dv.data_ptr<float>();
  at::parallel_for(0, s.count, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t base = bh * s.genes * s.dim;
      for (int64_t i = 0; i < s.genes; ++i) {
        const float* qi = Q + base + i * s.dim;
        const float* doi = dO + base + i * s.dim;
        float* dqi = dQ + base + i * s.dim;
        const float lse_i = L[bh * s.genes + i];
        const float delta = dot(doi, O + base + i * s.dim, s.dim);  // sum_j p_ij (dO_i . v_j)
        for (int64_t e = s.offsets[i]; e < s.offsets[i + 1]; ++e) {
          const int64_t j = s.sources[e];
          const float* kj = K + base + j * s.dim;
          const float* vj = V + base + j * s.dim;
          const float p = std::exp(dot(qi, kj, s.dim) * s.scale - lse_i);
          add_scaled(dV + base + j * s.dim, doi, p, s.dim);
          const float ds = p * (dot(doi, vj, s.dim) - delta) * s.scale;
          add_scaled(dqi, kj, ds, s.dim);
          add_scaled(dK + base + j * s.dim, qi, ds, s.dim);
        }
      }
    }
  });
}

// The same passes on the GPU (kernels/cuda/edge_attention.cu), one warp per
// (cell, head, target gene).
void fused_forward_cuda(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph, Tensor& out,
                        Tensor& lse) {
  cuda::edge_attention_forward(q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(),
                               graph.offsets.data_ptr<int64_t>(), graph.sources.data_ptr<int64_t>(),
                               q.size(0) * q.size(1), q.size(2), q.size(3), out.data_ptr<float>(),
                               lse.data_ptr<float>(), current_cuda_stream(q));
}

void fused_backward_cuda(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                         const Tensor& grad_out, const EdgeIndex& graph, Tensor& dq, Tensor& dk, Tensor& dv) {
  cuda::edge_attention_backward(q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(),
                                lse.data_ptr<float>(), grad_out.data_ptr<float>(), graph.offsets.data_ptr<int64_t>(),
                                graph.sources.data_ptr<int64_t>(), q.size(0) * q.size(1), q.size(2), q.size(3),
                                dq.data_ptr<float>(), dk.data_ptr<float>(), dv.data_ptr<float>(),
                                current_cuda_stream(q));
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct FusedEdgeAttention : public torch::autograd::Function<FusedEdgeAttention> {
  static Tensor forward(AutogradContext* ctx, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                        const Tensor& offsets, const Tensor& sources) {
    const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const EdgeIndex graph{offsets, sources, Tensor()};
    Tensor out = at::empty_like(q);                                    // (B, H, G, Dh)
    Tensor lse = at::empty({q.size(0), q.size(1), q.size(2)}, q.options());  // (B, H, G)
    if (q.is_cuda()) {
      fused_forward_cuda(q, k, v, graph, out, lse);
    } else {
      fused_forward(q, k, v, graph, out, lse);
    }
    ctx->save_for_backward({q, k, v, out, lse, offsets, sources});
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const EdgeIndex graph{saved[5], saved[6], Tensor()};
    Tensor dq = at::zeros_like(q), dk = at::zeros_like(k), dv = at::zeros_like(v);
    if (q.is_cuda()) {
      fused_backward_cuda(q, k, v, out, lse, grads[0].contiguous(), graph, dq, dk, dv);
    } else {
      fused_backward(q, k, v, out, lse, grads[0].contiguous(), graph, dq, dk, dv);
    }
    return {dq, dk, dv, Tensor(), Tensor()};
  }
};

}  // namespace

EdgeIndex EdgeIndex::of(const EdgeGraph& graph) {
  const auto as_long = [](const std::vector<int64_t>& v) {
    return at::tensor(v, at::TensorOptions().dtype(at::kLong));
  };
  std::vector<int64_t> targets(graph.sources.size());
  for (int64_t i = 0; i < graph.n_genes; ++i) {
    for (int64_t e = graph.offsets[i]; e < graph.offsets[i + 1]; ++e) targets[e] = i;
  }
  return {as_long(graph.offsets), as_long(graph.sources), as_long(targets), graph.cell_node};
}

Tensor edge_attention_dense_reference(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph) {
  check_inputs(q, k, v, graph);
  const int64_t G = q.size(2);
  Tensor allowed = at::zeros({G, G}, q.options().dtype(at::kBool));            // (target, source)
  allowed.index_put_({graph.targets, graph.sources}, true);
  const Tensor bias = at::zeros({G, G}, q.options()).masked_fill(allowed.logical_not(), -INFINITY);  // (G, G)
  return attention_reference(q, k, v, bias);                                   // (B, H, G, Dh)
}

Tensor edge_attention_gather(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph) {
  check_inputs(q, k, v, graph);
  const int64_t B = q.size(0), H = q.size(1), G = q.size(2), E = graph.sources.numel();
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  const Tensor scores = (q.index_select(2, graph.targets) * k.index_select(2, graph.sources)).sum(-1) * scale;  // (B, H, E)
  Tensor top;  // (B, H, G): each target's largest score; softmax is shift-invariant, so no gradient
  {
    torch::NoGradGuard no_grad;
    top = at::full({B, H, G}, -INFINITY, q.options())
              .scatter_reduce(2, graph.targets.view({1, 1, E}).expand({B, H, E}), scores, "amax", true);
  }
  const Tensor p = at::exp(scores - top.index_select(2, graph.targets));        // (B, H, E)
  const Tensor total = at::zeros({B, H, G}, q.options()).index_add(2, graph.targets, p);  // (B, H, G)
  const Tensor weight = p / total.index_select(2, graph.targets);               // (B, H, E)
  const Tensor messages = weight.unsqueeze(-1) * v.index_select(2, graph.sources);  // (B, H, E, Dh)
  return at::zeros_like(q).index_add(2, graph.targets, messages);               // (B, H, G, Dh)
}

Tensor edge_attention_fused_cpu(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph) {
  check_inputs(q, k, v, graph);
  if (!q.device().is_cpu() || q.scalar_type() != at::kFloat) {
    throw std::invalid_argument("the fused edge attention runs on float32 CPU tensors");
  }
  return FusedEdgeAttention::apply(q, k, v, graph.offsets, graph.sources);
}

Tensor edge_attention_fused_cuda(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph) {
  check_inputs(q, k, v, graph);
  if (!cuda_kernels_built()) throw std::invalid_argument("the fused CUDA edge attention: this core was built without CUDA");
  if (!q.is_cuda() || q.scalar_type() != at::kFloat || q.size(3) > kMaxCudaHeadDim) {
    throw std::invalid_argument("the fused CUDA edge attention runs on float32 CUDA tensors with head dimensions up to " +
                                std::to_string(kMaxCudaHeadDim));
  }
  return FusedEdgeAttention::apply(q, k, v, graph.offsets, graph.sources);
}

Tensor edge_attention(const Tensor& q, const Tensor& k, const Tensor& v, const EdgeIndex& graph) {
  if (q.scalar_type() == at::kFloat) {
    if (q.device().is_cpu()) return edge_attention_fused_cpu(q, k, v, graph);
    if (q.is_cuda() && cuda_kernels_built() && q.size(3) <= kMaxCudaHeadDim) {
      return edge_attention_fused_cuda(q, k, v, graph);
    }
  }
  return edge_attention_gather(q, k, v, graph);
}

}  // namespace exprflow
