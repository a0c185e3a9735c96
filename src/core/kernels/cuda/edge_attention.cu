// Attention over the edges of a gene graph, one warp per (slice, target
// gene): the CUDA twin of the fused CPU kernel in backbone/edge_attention.cpp,
// which the tests compare it against. The lanes split the head dimension
// (up to kMaxDimPerLane values each, so Dh <= 128); every edge's score is a
// warp-wide sum, and an online softmax keeps only the output and the
// target's log-sum-exp, so no (B, H, E) or (B, H, E, Dh) tensor exists.
// Backward recomputes each edge's probability from the log-sum-exp; the
// sources' gradients (dk, dv) gather from many targets and are added with
// atomics, the target's own (dq) stays in registers.
#include <math.h>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.hpp"

namespace exprflow {
namespace cuda {

namespace {

constexpr int kWarp = 32;
constexpr int kMaxDimPerLane = 4;
constexpr int kWarpsPerBlock = 8;

__device__ inline float warp_sum(float value) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Loads this lane's share of one Dh-vector (dims lane, lane + 32, ...), zero past Dh.
__device__ inline void load_share(const float* row, int64_t dim, int lane, float (&share)[kMaxDimPerLane]) {
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) {
    const int64_t d = lane + r * kWarp;
    share[r] = d < dim ? row[d] : 0.0f;
  }
}

__device__ inline float dot_share(const float (&share)[kMaxDimPerLane], const float* row, int64_t dim, int lane) {
  float partial = 0.0f;
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) {
    const int64_t d = lane + r * kWarp;
    if (d < dim) partial += share[r] * row[d];
  }
  return warp_sum(partial);
}

__global__ void edge_attention_forward_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                              const float* __restrict__ v, const int64_t* __restrict__ offsets,
                                              const int64_t* __restrict__ sources, int64_t slices, int64_t genes,
                                              int64_t dim, float scale, float* __restrict__ out,
                                              float* __restrict__ lse) {
  const int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (warp >= slices * genes) return;  // whole warps leave together
  const int64_t slice = warp / genes, target = warp - slice * genes;
  const int64_t base = slice * genes * dim;
  float qi[kMaxDimPerLane], acc[kMaxDimPerLane] = {0.0f, 0.0f, 0.0f, 0.0f};
  load_share(q + base + target * dim, dim, lane, qi);
  float top = -INFINITY, total = 0.0f;
  for (int64_t e = offsets[target]; e < offsets[target + 1]; ++e) {
    const int64_t j = sources[e];
    const float score = dot_share(qi, k + base + j * dim, dim, lane) * scale;
    const float new_top = fmaxf(top, score);
    const float rescale = __expf(top - new_top);  // 0 on the first edge (top = -inf)
    const float p = __expf(score - new_top);
    total = total * rescale + p;
    const float* vj = v + base + j * dim;
#pragma unroll
    for (int r = 0; r < kMaxDimPerLane; ++r) {
      const int64_t d = lane + r * kWarp;
      acc[r] = acc[r] * rescale + (d < dim ? p * vj[d] : 0.0f);
    }
    top = new_top;
  }
  float* oi = out + base + target * dim;
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) {
    const int64_t d = lane + r * kWarp;
    if (d < dim) oi[d] = acc[r] / total;
  }
  if (lane == 0) lse[slice * genes + target] = top + logf(total);
}

__global__ void edge_attention_backward_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                               const float* __restrict__ v, const float* __restrict__ out,
                                               const float* __restrict__ lse, const float* __restrict__ grad_out,
                                               const int64_t* __restrict__ offsets,
                                               const int64_t* __restrict__ sources, int64_t slices, int64_t genes,
                                               int64_t dim, float scale, float* __restrict__ dq, float* dk,
                                               float* dv) {
  const int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (warp >= slices * genes) return;
  const int64_t slice = warp / genes, target = warp - slice * genes;
  const int64_t base = slice * genes * dim;
  float qi[kMaxDimPerLane], doi[kMaxDimPerLane], dqi[kMaxDimPerLane] = {0.0f, 0.0f, 0.0f, 0.0f};
  load_share(q + base + target * dim, dim, lane, qi);
  load_share(grad_out + base + target * dim, dim, lane, doi);
  const float delta = dot_share(doi, out + base + target * dim, dim, lane);  // sum_j p_ij (dO_i . v_j)
  const float lse_i = lse[slice * genes + target];
  for (int64_t e = offsets[target]; e < offsets[target + 1]; ++e) {
    const int64_t j = sources[e];
    const float* kj = k + base + j * dim;
    const float p = __expf(dot_share(qi, kj, dim, lane) * scale - lse_i);
    const float ds = p * (dot_share(doi, v + base + j * dim, dim, lane) - delta) * scale;
#pragma unroll
    for (int r = 0; r < kMaxDimPerLane; ++r) {
      const int64_t d = lane + r * kWarp;
      if (d < dim) {
        atomicAdd(dv + base + j * dim + d, p * doi[r]);
        atomicAdd(dk + base + j * dim + d, ds * qi[r]);
        dqi[r] += ds * kj[d];
      }
    }
  }
  float* dq_row = dq + base + target * dim;
#pragma unroll
  for (int r = 0; r < kMaxDimPerLane; ++r) {
    const int64_t d = lane + r * kWarp;
    if (d < dim) dq_row[d] = dqi[r];
  }
}

void check_dim(int64_t dim) {
  if (dim > kWarp * kMaxDimPerLane) {
    throw std::invalid_argument("the CUDA edge attention takes head dimensions up to " +
                                std::to_string(kWarp * kMaxDimPerLane) + ", not " + std::to_string(dim));
  }
}

}  // namespace

void edge_attention_forward(const float* q, const float* k, const float* v, const int64_t* offsets,
                            const int64_t* sources, int64_t slices, int64_t genes, int64_t dim, float* out,
                            float* lse, void* stream) {
  check_dim(dim);
  const int64_t warps = slices * genes;
  if (warps == 0) return;
  const unsigned int blocks = static_cast<unsigned int>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
  edge_attention_forward_kernel<<<blocks, kWarpsPerBlock * kWarp, 0, as_stream(stream)>>>(
      q, k, v, offsets, sources, slices, genes, dim, 1.0f / sqrtf(static_cast<float>(dim)), out, lse);
  check_launch("edge_attention_forward");
}

void edge_attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                             const float* grad_out, const int64_t* offsets, const int64_t* sources, int64_t slices,
                             int64_t genes, int64_t dim, float* dq, float* dk, float* dv, void* stream) {
  check_dim(dim);
  const int64_t warps = slices * genes;
  if (warps == 0) return;
  const unsigned int blocks = static_cast<unsigned int>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
  edge_attention_backward_kernel<<<blocks, kWarpsPerBlock * kWarp, 0, as_stream(stream)>>>(
      q, k, v, out, lse, grad_out, offsets, sources, slices, genes, dim, 1.0f / sqrtf(static_cast<float>(dim)), dq,
      dk, dv);
  check_launch("edge_attention_backward");
}

}  // namespace cuda
}  // namespace exprflow
