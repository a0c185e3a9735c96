// Diagonal structured state-space layer, S4D (Gu, Gupta, Goel & Ré 2022, "On
// the Parameterization and Initialization of Diagonal State Space Models").
//
// Every channel h runs its own linear time-invariant SSM with N/2 complex
// diagonal state entries (their conjugates are implied, hence the factor 2 on
// the real part below):
//
//   A_n = -exp(log_A_real_n) + i * A_imag_n,   dt = exp(log_dt),   B = 1
//   zero-order hold:  Abar = exp(dt A),  Bbar = (exp(dt A) - 1) / A
//   x_k = Abar x_{k-1} + Bbar u_k,       y_k = 2 Re(C . x_k) + D u_k
//
// Because the system is time-invariant, y is u convolved with the kernel
// K_l = 2 Re(sum_n C_n Bbar_n Abar_n^l) (a Vandermonde product), which the
// forward pass applies as a causal FFT convolution of length 2L: O(L log L)
// and parallel over the sequence, where the recurrence is a loop over L.
// reference_recurrence() runs that loop, as the tests' reference.
//
// Complex quantities are held as separate real and imaginary real tensors so
// that autograd and every backend (and LibTorch 1.13) treat them as plain
// real parameters.
//
// Initialisation (the init setting):
//   "lin"  S4D-Lin: A_n = -1/2 + i pi n
//   "inv"  S4D-Inv: A_n = -1/2 + i (N/pi) (N/(2n+1) - 1)
// log_dt uniform in [log dt_min, log dt_max], C complex standard normal, D
// standard normal.
//
// The layer is depthwise (no mixing across channels) and one-directional
// (causal); the SSM backbone block adds the channel mixing and runs a second
// layer over the reversed sequence.
#pragma once

#include <string>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class S4dImpl : public torch::nn::Module {
 public:
  // state_size N: even, N/2 complex state entries per channel.
  S4dImpl(int64_t channels, int64_t state_size, const std::string& init = "lin", double dt_min = 1e-3,
          double dt_max = 1e-1);

  Tensor forward(const Tensor& u);  // (B, L, H) -> (B, L, H), FFT convolution
  Tensor kernel(int64_t length);    // (H, L): the convolution kernel K, without the D skip

  // The same map computed by running the discretised recurrence step by step
  // (complex tensors, a loop over L). Slow; for tests.
  Tensor reference_recurrence(const Tensor& u);  // (B, L, H) -> (B, L, H)

 private:
  Tensor log_dt_;               // (H)
  Tensor log_A_real_, A_imag_;  // (H, N/2)
  Tensor C_real_, C_imag_;      // (H, N/2)
  Tensor D_;                    // (H)
};
TORCH_MODULE(S4d);

}  // namespace exprflow
