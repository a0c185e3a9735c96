// The CUDA kernels' entry points (kernels/cuda/*.cu), in plain C++ types so
// that the LibTorch side includes no CUDA header and nvcc compiles no
// LibTorch header. Each launches on `stream` (a cudaStream_t, the current
// LibTorch stream: runtime/cuda_stream.hpp) on the current device and throws
// std::runtime_error naming the kernel if the launch fails. Pointers are to
// contiguous device memory; shapes are those of the CPU kernel each one
// mirrors, which is the reference the tests compare it against.
// Declared in every build: defined by the .cu files where the core is built
// with CUDA, by without_cuda.cpp (each throws std::logic_error) otherwise;
// the dispatchers call them only after cuda_kernels_built().
#pragma once

#include <cstdint>

namespace exprflow {
namespace cuda {

// decode/nb_log_prob: x, mu (B, G); theta (1, G) or (B, G) with
// theta_row_stride 0 or G. out (B, G); d_mu, d_theta (B, G) or null.
template <class T>
void nb_log_prob(const T* x, const T* mu, const T* theta, int64_t rows, int64_t genes, int64_t theta_row_stride,
                 T* out, T* d_mu, T* d_theta, void* stream);

// backbone/edge_attention: q, k, v, out (S, G, Dh) with S = B * H slices;
// lse (S, G); offsets (G + 1) and sources (E) the graph's CSR by target.
void edge_attention_forward(const float* q, const float* k, const float* v, const int64_t* offsets,
                            const int64_t* sources, int64_t slices, int64_t genes, int64_t dim, float* out,
                            float* lse, void* stream);
// dq, dk, dv zeroed by the caller (dk, dv are accumulated with atomics).
void edge_attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                             const float* grad_out, const int64_t* offsets, const int64_t* sources, int64_t slices,
                             int64_t genes, int64_t dim, float* dq, float* dk, float* dv, void* stream);

// backbone/selective_scan: u, delta, y (B, L, E); A (E, N); Bm, Cm (B, L, N);
// D (E). N at most kMaxScanStates.
constexpr int64_t kMaxScanStates = 64;
template <class T>
void selective_scan_forward(const T* u, const T* delta, const T* A, const T* Bm, const T* Cm, const T* D,
                            int64_t batch, int64_t length, int64_t channels, int64_t states, T* y, void* stream);
// states_scratch (B, L, E, N) for the recomputed states. Per-channel partials
// that the caller sums: dA_parts (B, E, N), dD_parts (B, E), dB_parts and
// dC_parts (B, L, E, N) (summed over E). du, ddelta (B, L, E) written whole.
template <class T>
void selective_scan_backward(const T* u, const T* delta, const T* A, const T* Bm, const T* Cm, const T* D,
                             const T* dy, int64_t batch, int64_t length, int64_t channels, int64_t states,
                             T* states_scratch, T* du, T* ddelta, T* dA_parts, T* dB_parts, T* dC_parts, T* dD_parts,
                             void* stream);

}  // namespace cuda
}  // namespace exprflow
