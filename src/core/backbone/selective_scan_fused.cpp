// The selective scan as one CPU loop per sequence, with its backward written
// out (backbone/selective_scan.hpp has the recurrence and the chunked form).
//
// Why: the chunked LibTorch form materialises (Lc, Lc, B, E, N) weights per
// chunk and autograd keeps them, so its forward + backward costs several
// times the plain recurrence (the header's figures), and the plain
// recurrence in LibTorch ops is one small kernel launch per time step. Here
// the state of one sequence, (E, N), stays in cache while the loop runs over
// time: each step reads one row of u, delta, B and C and writes one row of y.
//
// Backward recomputes the states of a sequence forward (nothing but the
// inputs is saved) and then runs the adjoint recurrence backward in time.
// With g_t the gradient reaching h_t (from y_t and from h_{t+1}) and
// a_t = exp(delta_t A):
//   g_t       = C_t dy_t + a_{t+1} g_{t+1}
//   dC_t     += dy_t h_t                 (summed over channels)
//   dB_t     += g_t delta_t u_t          (summed over channels)
//   d(delta_t u_t) = sum_n g_t B_t
//   d(delta_t A)   = g_t h_{t-1} a_t     -> delta_t's and A's gradients
// Sequences are independent, so they run in parallel; A's and D's gradients
// are summed over per-sequence partials afterwards (no two threads write
// one element, and the sum is the same for any thread count).
//
// Measured on 2 cores, one LibTorch thread (bench_selective_scan, forward +
// backward, E 256, N 16): B 128 x L 8 (a latent_ssm training step) 14.3 ms
// against 180 ms for the chunked form and 38 ms for the step loop in
// LibTorch ops; B 512 x L 8 (sampling 256 cells with guidance) 59 / 871 /
// 172 ms. latent_ssm with ssm_layer = "mamba" (bench_compositions --set
// ssm_layer=mamba, 2,000 genes): training 78 -> 450 cells/s, sampling
// 3.8 -> 38.8 cells/s, peak memory 2,855 -> 371 MB.
// The decays exp(delta A) come from LibTorch's vectorised exp, one sequence
// at a time into a per-thread buffer that is still in cache when the loop
// reads it: the whole batch's decays computed first took 17.3 ms (B 128) and
// 121 ms (B 512); an exp per element inside the loop (glibc's 4-wide vector
// exp under -ffast-math) was slower still (28 ms against 22 ms for the
// whole-batch form, measured while another job shared the CPU).
#include "backbone/selective_scan.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/launchers.hpp"
#include "runtime/cuda_stream.hpp"

namespace exprflow {

namespace {

struct ScanShape {
  int64_t batch, length, channels, states;
};

ScanShape shape_of(const Tensor& u, const Tensor& A) { return {u.size(0), u.size(1), u.size(2), A.size(1)}; }

// exp(delta_t A) of one sequence, every step, channel and state entry, into
// a thread's buffer (L, E, N) by LibTorch's vectorised exp (a scalar
// std::exp per element took most of the loop's time).
void sequence_decays(const Tensor& delta, const Tensor& A, int64_t b, Tensor& buffer) {
  at::mul_out(buffer, delta.select(0, b).unsqueeze(-1), A).exp_();  // (L, E, N)
}

// y (B, L, E) from contiguous u, delta (B, L, E), A (E, N), B, C (B, L, N), D (E).
template <class T>
void scan_forward(const ScanShape& s, const Tensor& delta_t, const Tensor& A_t, const T* u, const T* Bm, const T* Cm,
                  const T* D, T* y) {
  const int64_t L = s.length, E = s.channels, N = s.states;
  const T* delta = delta_t.data_ptr<T>();
  at::parallel_for(0, s.batch, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> h(E * N);  // (E, N): this sequence's state
    Tensor decay_buffer = at::empty({L, E, N}, A_t.options());
    for (int64_t b = lo; b < hi; ++b) {
      sequence_decays(delta_t, A_t, b, decay_buffer);
      const T* decay = decay_buffer.data_ptr<T>();  // (L, E, N)
      std::fill(h.begin(), h.end(), T(0));
      for (int64_t t = 0; t < L; ++t) {
        const int64_t row = (b * L + t) * E;
        const T* Bt = Bm + (b * L + t) * N;
        const T* Ct = Cm + (b * L + t) * N;
        for (int64_t e = 0; e < E; ++e) {
          const T du = delta[row + e] * u[row + e];
          const T* ae = decay + (t * E + e) * N;
          T* he = h.data() + e * N;
          T out = 0;
          for (int64_t n = 0; n < N; ++n) {
            he[n] = ae[n] * he[n] + du * Bt[n];
            out += Ct[n] * he[n];
          }
          y[row + e] = out + D[e] * u[row + e];
        }
      }
    }
  });
}

struct ScanGradients {
  Tensor u, delta, A, B, C, D;
};

// Every input's gradient from dy (B, L, E); inputs contiguous.
template <class T>
void scan_backward(const ScanShape& s, const Tensor& delta_t, const Tensor& A_t, const T* u, const T* Bm, const T* Cm,
                   const T* D, const T* dy, ScanGradients& g) {
  const int64_t L = s.length, E = s.channels, N = s.states;
  const T *delta = delta_t.data_ptr<T>(), *A = A_t.data_ptr<T>();
  T *du = g.u.data_ptr<T>(), *ddelta = g.delta.data_ptr<T>(), *dB = g.B.data_ptr<T>(), *dC = g.C.data_ptr<T>();
  T* dA_parts = g.A.data_ptr<T>();  // (B, E, N): one partial per sequence, summed by the caller
  T* dD_parts = g.D.data_ptr<T>();  // (B, E)
  at::parallel_for(0, s.batch, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> states(L * E * N);  // (L, E, N): h_t of one sequence
    std::vector<T> carry(E * N);       // (E, N): gradient reaching h_t from h_{t+1}
    Tensor decay_buffer = at::empty({L, E, N}, A_t.options());
    for (int64_t b = lo; b < hi; ++b) {
      sequence_decays(delta_t, A_t, b, decay_buffer);
      const T* decay = decay_buffer.data_ptr<T>();  // (L, E, N)
      // Recompute the states forward.
      for (int64_t t = 0; t < L; ++t) {
        const int64_t row = (b * L + t) * E;
        const T* Bt = Bm + (b * L + t) * N;
        for (int64_t e = 0; e < E; ++e) {
          const T du_in = delta[row + e] * u[row + e];
          const T* ae = decay + (t * E + e) * N;
          T* he = states.data() + (t * E + e) * N;
          if (t == 0) {
            for (int64_t n = 0; n < N; ++n) he[n] = du_in * Bt[n];
          } else {
            const T* prev = he - E * N;
            for (int64_t n = 0; n < N; ++n) he[n] = ae[n] * prev[n] + du_in * Bt[n];
          }
        }
      }
      // The adjoint recurrence, backward in time.
      std::fill(carry.begin(), carry.end(), T(0));
      T* dA = dA_parts + b * E * N;
      T* dD = dD_parts + b * E;
      for (int64_t t = L - 1; t >= 0; --t) {
        const int64_t row = (b * L + t) * E;
        const T* Bt = Bm + (b * L + t) * N;
        const T* Ct = Cm + (b * L + t) * N;
        T* dBt = dB + (b * L + t) * N;
        T* dCt = dC + (b * L + t) * N;
        for (int64_t e = 0; e < E; ++e) {
          const T d = delta[row + e], ue = u[row + e], dye = dy[row + e];
          const T* Ae = A + e * N;
          const T* ae = decay + (t * E + e) * N;
          const T* he = states.data() + (t * E + e) * N;
          const T* prev = t > 0 ? states.data() + ((t - 1) * E + e) * N : nullptr;
          T* ge = carry.data() + e * N;
          T d_input = 0;  // d(delta_t u_t)
          T d_delta = 0;  // through the decay
          for (int64_t n = 0; n < N; ++n) {
            const T grad_h = ge[n] + dye * Ct[n];  // total gradient reaching h_t
            dCt[n] += dye * he[n];
            dBt[n] += grad_h * d * ue;
            d_input += grad_h * Bt[n];
            const T a = ae[n];
            const T d_log_decay = prev ? grad_h * prev[n] * a : T(0);  // d(delta_t A)
            d_delta += d_log_decay * Ae[n];
            dA[e * N + n] += d_log_decay * d;
            ge[n] = grad_h * a;  // what reaches h_{t-1}
          }
          dD[e] += dye * ue;
          ddelta[row + e] = d_delta + d_input * ue;
          du[row + e] = dye * D[e] + d_input * d;
        }
      }
    }
  });
}

// The same loops on the GPU (kernels/cuda/selective_scan.cu), one thread per
// (sequence, channel); the shared gradients come back as partials summed here.
template <class T>
void scan_forward_cuda(const ScanShape& s, const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                       const Tensor& C, const Tensor& D, Tensor& y) {
  cuda::selective_scan_forward<T>(u.data_ptr<T>(), delta.data_ptr<T>(), A.data_ptr<T>(), B.data_ptr<T>(),
                                  C.data_ptr<T>(), D.data_ptr<T>(), s.batch, s.length, s.channels, s.states,
                                  y.data_ptr<T>(), current_cuda_stream(u));
}

std::vector<Tensor> scan_backward_cuda(const ScanShape& s, const Tensor& u, const Tensor& delta, const Tensor& A,
                                       const Tensor& B, const Tensor& C, const Tensor& D, const Tensor& dy) {
  const auto per_state = u.options();
  Tensor states = at::empty({s.batch, s.length, s.channels, s.states}, per_state);    // (B, L, E, N)
  Tensor dB_parts = at::empty({s.batch, s.length, s.channels, s.states}, per_state);  // (B, L, E, N)
  Tensor dC_parts = at::empty({s.batch, s.length, s.channels, s.states}, per_state);  // (B, L, E, N)
  Tensor dA_parts = at::empty({s.batch, s.channels, s.states}, per_state);            // (B, E, N)
  Tensor dD_parts = at::empty({s.batch, s.channels}, per_state);                      // (B, E)
  Tensor du = at::empty_like(u), ddelta = at::empty_like(delta);                      // (B, L, E)
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_fused_cuda_backward", [&] {
    cuda::selective_scan_backward<scalar_t>(
        u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(), B.data_ptr<scalar_t>(),
        C.data_ptr<scalar_t>(), D.data_ptr<scalar_t>(), dy.data_ptr<scalar_t>(), s.batch, s.length, s.channels,
        s.states, states.data_ptr<scalar_t>(), du.data_ptr<scalar_t>(), ddelta.data_ptr<scalar_t>(),
        dA_parts.data_ptr<scalar_t>(), dB_parts.data_ptr<scalar_t>(), dC_parts.data_ptr<scalar_t>(),
        dD_parts.data_ptr<scalar_t>(), current_cuda_stream(u));
  });
  // A: (E, N), B and C: (B, L, N), D: (E)
  return {du, ddelta, dA_parts.sum(0), dB_parts.sum(2), dC_parts.sum(2), dD_parts.sum(0)};
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct FusedSelectiveScan : public torch::autograd::Function<FusedSelectiveScan> {
  static Tensor forward(AutogradContext* ctx, const Tensor& u_in, const Tensor& delta_in, const Tensor& A_in,
                        const Tensor& B_in, const Tensor& C_in, const Tensor& D_in) {
    const Tensor u = u_in.contiguous(), delta = delta_in.contiguous(), A = A_in.contiguous();
    const Tensor B = B_in.contiguous(), C = C_in.contiguous(), D = D_in.contiguous();
    Tensor y = at::empty_like(u);  // (B, L, E)
    const ScanShape s = shape_of(u, A);
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_fused", [&] {
      if (u.is_cuda()) {
        scan_forward_cuda<scalar_t>(s, u, delta, A, B, C, D, y);
      } else {
        scan_forward<scalar_t>(s, delta, A, u.data_ptr<scalar_t>(), B.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(),
                               D.data_ptr<scalar_t>(), y.data_ptr<scalar_t>());
      }
    });
    ctx->save_for_backward({u, delta, A, B, C, D});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &u = saved[0], &delta = saved[1], &A = saved[2], &B = saved[3], &C = saved[4], &D = saved[5];
    const Tensor dy = grads[0].contiguous();  // (B, L, E)
    const ScanShape s = shape_of(u, A);
    if (u.is_cuda()) return scan_backward_cuda(s, u, delta, A, B, C, D, dy);
    ScanGradients g{at::empty_like(u), at::empty_like(delta), at::zeros({s.batch, s.channels, s.states}, A.options()),
                    at::zeros_like(B), at::zeros_like(C), at::zeros({s.batch, s.channels}, D.options())};
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_fused_cpu_backward", [&] {
      scan_backward<scalar_t>(s, delta, A, u.data_ptr<scalar_t>(), B.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(),
                              D.data_ptr<scalar_t>(), dy.data_ptr<scalar_t>(), g);
    });
    return {g.u, g.delta, g.A.sum(0), g.B, g.C, g.D.sum(0)};  // A: (E, N), D: (E)
  }
};

bool all_of_type_on(at::DeviceType device, const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                    const Tensor& C, const Tensor& D) {
  const at::ScalarType type = u.scalar_type();
  if (type != at::kFloat && type != at::kDouble) return false;
  for (const Tensor* t : {&u, &delta, &A, &B, &C, &D}) {
    if (t->device().type() != device || t->scalar_type() != type) return false;
  }
  return true;
}

}  // namespace

bool selective_scan_fused_cuda_applies(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                       const Tensor& C, const Tensor& D) {
  return cuda_kernels_built() && all_of_type_on(at::kCUDA, u, delta, A, B, C, D) && A.dim() == 2 &&
         A.size(1) >= 1 && A.size(1) <= cuda::kMaxScanStates;
}

Tensor selective_scan_fused_cuda(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                 const Tensor& C, const Tensor& D) {
  check_selective_scan_shapes(u, delta, A, B, C, D);
  if (!selective_scan_fused_cuda_applies(u, delta, A, B, C, D)) {
    throw std::invalid_argument("the fused CUDA selective scan runs on CUDA tensors, all float32 or all float64, with "
                                "at most " + std::to_string(cuda::kMaxScanStates) +
                                " state entries, in a core built with CUDA");
  }
  return FusedSelectiveScan::apply(u, delta, A, B, C, D);
}

bool selective_scan_fused_cpu_applies(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                      const Tensor& C, const Tensor& D) {
  return all_of_type_on(at::kCPU, u, delta, A, B, C, D);
}

Tensor selective_scan_fused_cpu(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                                const Tensor& D) {
  check_selective_scan_shapes(u, delta, A, B, C, D);
  if (!selective_scan_fused_cpu_applies(u, delta, A, B, C, D)) {
    throw std::invalid_argument("the fused selective scan runs on CPU tensors, all float32 or all float64");
  }
  return FusedSelectiveScan::apply(u, delta, A, B, C, D);
}

}  // namespace exprflow
