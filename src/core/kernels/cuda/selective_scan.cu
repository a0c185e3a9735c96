// The selective scan, one thread per (sequence, channel) looping over time
// with its state in registers: the CUDA twin of the fused CPU loop in
// backbone/selective_scan_fused.cpp (the recurrence and the adjoint are
// written out there), which the tests compare it against. The state size N
// is a template bound (kMax, 16 or 64) with the loops unrolled and predicated
// on the actual N, so the state never leaves registers.
//
// Backward recomputes the states forward into a scratch buffer (B, L, E, N)
// and runs the adjoint backward in time. Gradients that several channels
// share (B_t, C_t: summed over channels; A, D: summed over sequences) are
// written as per-thread partials that the caller sums with LibTorch: no
// atomics, and the same result on every run.
#include <math.h>

#include <string>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.hpp"

namespace exprflow {
namespace cuda {

namespace {

constexpr int kThreads = 128;

template <class T, int kMax>
__global__ void scan_forward_kernel(const T* __restrict__ u, const T* __restrict__ delta, const T* __restrict__ A,
                                    const T* __restrict__ Bm, const T* __restrict__ Cm, const T* __restrict__ D,
                                    int64_t batch, int64_t length, int64_t channels, int64_t states,
                                    T* __restrict__ y) {
  const int64_t id = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (id >= batch * channels) return;
  const int64_t b = id / channels, e = id - b * channels;
  T h[kMax], a_log[kMax];
#pragma unroll
  for (int n = 0; n < kMax; ++n) {
    h[n] = 0;
    a_log[n] = n < states ? A[e * states + n] : T(0);
  }
  for (int64_t t = 0; t < length; ++t) {
    const int64_t at = (b * length + t) * channels + e;
    const T d = delta[at], ue = u[at], du = d * ue;
    const T* Bt = Bm + (b * length + t) * states;
    const T* Ct = Cm + (b * length + t) * states;
    T out = 0;
#pragma unroll
    for (int n = 0; n < kMax; ++n) {
      if (n < states) {
        h[n] = exp(d * a_log[n]) * h[n] + du * Bt[n];
        out += Ct[n] * h[n];
      }
    }
    y[at] = out + D[e] * ue;
  }
}

template <class T, int kMax>
__global__ void scan_backward_kernel(const T* __restrict__ u, const T* __restrict__ delta, const T* __restrict__ A,
                                     const T* __restrict__ Bm, const T* __restrict__ Cm, const T* __restrict__ D,
                                     const T* __restrict__ dy, int64_t batch, int64_t length, int64_t channels,
                                     int64_t states, T* __restrict__ saved, T* __restrict__ du,
                                     T* __restrict__ ddelta, T* __restrict__ dA_parts, T* __restrict__ dB_parts,
                                     T* __restrict__ dC_parts, T* __restrict__ dD_parts) {
  const int64_t id = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (id >= batch * channels) return;
  const int64_t b = id / channels, e = id - b * channels;
  T h[kMax], a_log[kMax], g[kMax], dA[kMax];
#pragma unroll
  for (int n = 0; n < kMax; ++n) {
    h[n] = 0;
    g[n] = 0;
    dA[n] = 0;
    a_log[n] = n < states ? A[e * states + n] : T(0);
  }
  // (B, L, E, N) offset of (b, t, e, 0)
  const auto slot = [&](int64_t t) { return ((b * length + t) * channels + e) * states; };
  // Recompute the states forward.
  for (int64_t t = 0; t < length; ++t) {
    const int64_t at = (b * length + t) * channels + e;
    const T du_in = delta[at] * u[at];
    const T* Bt = Bm + (b * length + t) * states;
    T* st = saved + slot(t);
#pragma unroll
    for (int n = 0; n < kMax; ++n) {
      if (n < states) {
        h[n] = exp(delta[at] * a_log[n]) * h[n] + du_in * Bt[n];
        st[n] = h[n];
      }
    }
  }
  // The adjoint recurrence, backward in time; g carries the gradient reaching h_t from h_{t+1}.
  T dD = 0;
  for (int64_t t = length - 1; t >= 0; --t) {
    const int64_t at = (b * length + t) * channels + e;
    const T d = delta[at], ue = u[at], dye = dy[at];
    const T* Bt = Bm + (b * length + t) * states;
    const T* Ct = Cm + (b * length + t) * states;
    const T* ht = saved + slot(t);
    const T* prev = t > 0 ? saved + slot(t - 1) : nullptr;
    T* dBt = dB_parts + slot(t);
    T* dCt = dC_parts + slot(t);
    T d_input = 0, d_delta = 0;
#pragma unroll
    for (int n = 0; n < kMax; ++n) {
      if (n < states) {
        const T grad_h = g[n] + dye * Ct[n];  // total gradient reaching h_t
        dCt[n] = dye * ht[n];
        dBt[n] = grad_h * d * ue;
        d_input += grad_h * Bt[n];
        const T a = exp(d * a_log[n]);
        const T d_log_decay = prev ? grad_h * prev[n] * a : T(0);  // d(delta_t A)
        d_delta += d_log_decay * a_log[n];
        dA[n] += d_log_decay * d;
        g[n] = grad_h * a;  // what reaches h_{t-1}
      }
    }
    dD += dye * ue;
    ddelta[at] = d_delta + d_input * ue;
    du[at] = dye * D[e] + d_input * d;
  }
#pragma unroll
  for (int n = 0; n < kMax; ++n) {
    if (n < states) dA_parts[(b * channels + e) * states + n] = dA[n];
  }
  dD_parts[b * channels + e] = dD;
}

void check_states(int64_t states) {
  if (states < 1 || states > kMaxScanStates) {
    throw std::invalid_argument("the CUDA selective scan takes 1 to " + std::to_string(kMaxScanStates) +
                                " state entries, not " + std::to_string(states));
  }
}

}  // namespace

template <class T>
void selective_scan_forward(const T* u, const T* delta, const T* A, const T* Bm, const T* Cm, const T* D,
                            int64_t batch, int64_t length, int64_t channels, int64_t states, T* y, void* stream) {
  check_states(states);
  const int64_t threads = batch * channels;
  if (threads == 0 || length == 0) return;
  const unsigned int blocks = static_cast<unsigned int>((threads + kThreads - 1) / kThreads);
  if (states <= 16) {
    scan_forward_kernel<T, 16><<<blocks, kThreads, 0, as_stream(stream)>>>(u, delta, A, Bm, Cm, D, batch, length,
                                                                            channels, states, y);
  } else {
    scan_forward_kernel<T, kMaxScanStates><<<blocks, kThreads, 0, as_stream(stream)>>>(
        u, delta, A, Bm, Cm, D, batch, length, channels, states, y);
  }
  check_launch("selective_scan_forward");
}

template <class T>
void selective_scan_backward(const T* u, const T* delta, const T* A, const T* Bm, const T* Cm, const T* D,
                             const T* dy, int64_t batch, int64_t length, int64_t channels, int64_t states,
                             T* states_scratch, T* du, T* ddelta, T* dA_parts, T* dB_parts, T* dC_parts, T* dD_parts,
                             void* stream) {
  check_states(states);
  const int64_t threads = batch * channels;
  if (threads == 0 || length == 0) return;
  const unsigned int blocks = static_cast<unsigned int>((threads + kThreads - 1) / kThreads);
  if (states <= 16) {
    scan_backward_kernel<T, 16><<<blocks, kThreads, 0, as_stream(stream)>>>(
        u, delta, A, Bm, Cm, D, dy, batch, length, channels, states, states_scratch, du, ddelta, dA_parts, dB_parts,
        dC_parts, dD_parts);
  } else {
    scan_backward_kernel<T, kMaxScanStates><<<blocks, kThreads, 0, as_stream(stream)>>>(
        u, delta, A, Bm, Cm, D, dy, batch, length, channels, states, states_scratch, du, ddelta, dA_parts, dB_parts,
        dC_parts, dD_parts);
  }
  check_launch("selective_scan_backward");
}

#define EXPRFLOW_SCAN_INSTANCES(T)                                                                                  \
  template void selective_scan_forward<T>(const T*, const T*, const T*, const T*, const T*, const T*, int64_t,      \
                                          int64_t, int64_t, int64_t, T*, void*);                                    \
  template void selective_scan_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*, const T*,    \
                                           int64_t, int64_t, int64_t, int64_t, T*, T*, T*, T*, T*, T*, T*, void*);
EXPRFLOW_SCAN_INSTANCES(float)
EXPRFLOW_SCAN_INSTANCES(double)
#undef EXPRFLOW_SCAN_INSTANCES

}  // namespace cuda
}  // namespace exprflow
