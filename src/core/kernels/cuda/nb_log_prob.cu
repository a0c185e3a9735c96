// The negative-binomial log-probability and its gradients, one thread per
// count (grid-stride), the branch of decode/nb_term.hpp for its own theta
// only: the CUDA twin of the fused CPU kernel in decode/nb_log_prob.cpp,
// which the tests compare it against. Arithmetic in double, as on the CPU:
// the lgamma differences cancel badly in float32; the kernel is bound by
// memory traffic (3 reads, up to 3 writes per count), not by arithmetic.
#include "decode/nb_term.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.hpp"

namespace exprflow {
namespace cuda {

namespace {

template <class T>
__global__ void nb_log_prob_kernel(const T* __restrict__ x, const T* __restrict__ mu, const T* __restrict__ theta,
                                   int64_t n, int64_t genes, int64_t theta_row_stride, T* __restrict__ out,
                                   T* __restrict__ d_mu, T* __restrict__ d_theta) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t row = i / genes, gene = i - row * genes;
    const double xi = x[i];
    const nb::Term t = nb::term(xi, mu[i], theta[row * theta_row_stride + gene], lgamma(xi + 1));
    out[i] = static_cast<T>(t.log_prob);
    if (d_mu) d_mu[i] = static_cast<T>(t.d_mu);
    if (d_theta) d_theta[i] = static_cast<T>(t.d_theta);
  }
}

}  // namespace

template <class T>
void nb_log_prob(const T* x, const T* mu, const T* theta, int64_t rows, int64_t genes, int64_t theta_row_stride,
                 T* out, T* d_mu, T* d_theta, void* stream) {
  const int64_t n = rows * genes;
  if (n == 0) return;
  constexpr int kThreads = 256;
  nb_log_prob_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(
      x, mu, theta, n, genes, theta_row_stride, out, d_mu, d_theta);
  check_launch("nb_log_prob");
}

template void nb_log_prob<float>(const float*, const float*, const float*, int64_t, int64_t, int64_t, float*, float*,
                                 float*, void*);
template void nb_log_prob<double>(const double*, const double*, const double*, int64_t, int64_t, int64_t, double*,
                                  double*, double*, void*);

}  // namespace cuda
}  // namespace exprflow
