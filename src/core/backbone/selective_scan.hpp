// Selective state-space model, the core of a Mamba block (Gu & Dao 2023,
// "Mamba: Linear-Time Sequence Modeling with Selective State Spaces").
//
// Unlike S4D, the step size delta and the input/output maps B and C are
// functions of the input, so the model can choose per token what to keep in
// its state. Per channel e and state entry n (A real, diagonal, negative):
//
//   h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t
//   y_t = C_t . h_t + D u_t
//
// The system is time-varying, so there is no convolution kernel; the scan is
// computed in chunks of length Lc instead. With S_t the cumulative sum of the
// log decays delta A within a chunk, every state of the chunk is
//
//   h_t = sum_{s <= t} exp(S_t - S_s) delta_s B_s u_s + exp(S_t) h_start
//
// one masked (Lc, Lc) matrix product, and only the chunk-end state is carried
// on in a loop: L / Lc sequential steps instead of L, in plain LibTorch ops
// whose autograd supplies the backward pass. S decreases along the chunk, so
// the exponent S_t - S_s (s <= t) is never positive: forming the difference
// before exponentiating cannot overflow, and the masked future entries are
// set to -inf, which exponentiates to an exact 0 with a zero gradient.
//
// The price of the parallel form is Lc times the work and the memory saved
// for backward of the plain loop (the (Lc, Lc) weights per channel and state
// entry: B E N L Lc numbers). Short chunks are therefore the fast ones: for
// B 16, L 64, E 256, N 16 on one CPU thread a forward + backward takes ~80 ms
// at Lc 1, ~140 ms at 4, ~260 ms at 8, ~1 s at 16 (the plain loop ~40 ms).
// The default 4 cuts the sequential steps (kernel launches on a GPU) by 4
// while keeping the extra work small. On the CPU the scan runs as one fused
// loop over time instead (selective_scan_fused.cpp), which keeps each
// sequence's state in cache and writes out its own backward; on a GPU a
// CUDA kernel does the same with one thread per (sequence, channel)
// (kernels/cuda/selective_scan.cu: 5.4x the chunked form at B 128, L 8,
// 21x at B 16, L 1024 on an H200); the chunked form serves the rest.
//
// MambaMixer wraps the scan as in Mamba: in_proj D -> 2E (x and the gate z,
// E = expand D), a short causal depthwise convolution and SiLU on x,
// input-dependent delta (low rank, softplus), B and C, the scan, y * SiLU(z),
// out_proj E -> D. A = -exp(A_log) starts at -(1..N) per channel (S4D-Real).
#pragma once

#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

// u, delta: (B, L, E); A: (E, N); B, C: (B, L, N); D: (E) -> y: (B, L, E).
// The fused loop for float32 / float64 tensors on the CPU (or on CUDA where
// the core is built with it, N <= 64), the chunked form otherwise. chunk: the chunked form's chunk length, >= 1 (need not
// divide L; > L means one chunk).
Tensor selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      const Tensor& D, int64_t chunk = 4);

// The chunked parallel form described above, in LibTorch ops (any device;
// autograd gives the backward).
Tensor selective_scan_chunked(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                              const Tensor& D, int64_t chunk = 4);

// One loop over time per sequence with its backward written out
// (selective_scan_fused.cpp): CPU tensors, all float32 or all float64.
// Measured against the chunked form in bench_selective_scan.
Tensor selective_scan_fused_cpu(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                                const Tensor& D);
bool selective_scan_fused_cpu_applies(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                      const Tensor& C, const Tensor& D);
// The same loops on the GPU (kernels/cuda/selective_scan.cu): CUDA tensors,
// all float32 or all float64, N <= 64, in a core built with CUDA.
Tensor selective_scan_fused_cuda(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                 const Tensor& C, const Tensor& D);
bool selective_scan_fused_cuda_applies(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                       const Tensor& C, const Tensor& D);

// Throws std::invalid_argument naming every shape unless they fit the above.
void check_selective_scan_shapes(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                 const Tensor& C, const Tensor& D);

// The same recurrence as a step-by-step loop over L. Slow; the tests' reference.
Tensor selective_scan_reference(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                                const Tensor& D);

class MambaMixerImpl : public torch::nn::Module {
 public:
  MambaMixerImpl(int64_t dim, int64_t state_size, int64_t expand = 2, int64_t conv_kernel = 4, int64_t chunk = 4,
                 double dt_min = 1e-3, double dt_max = 1e-1);
  Tensor forward(const Tensor& x);  // (B, L, D) -> (B, L, D), causal

 private:
  int64_t inner_, state_size_, dt_rank_, chunk_;
  Linear in_proj_{nullptr};              // D -> 2E: x and gate z
  Tensor conv_weight_, conv_bias_;       // (E, 1, K), (E): depthwise causal convolution
  Linear x_proj_{nullptr};               // E -> R + 2N: low-rank delta, B, C
  Linear dt_proj_{nullptr};              // R -> E, bias sets the initial step sizes
  Tensor A_log_;                         // (E, N)
  Tensor D_;                             // (E)
  Linear out_proj_{nullptr};             // E -> D
};
TORCH_MODULE(MambaMixer);

}  // namespace exprflow
