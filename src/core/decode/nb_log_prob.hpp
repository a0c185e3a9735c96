// The negative-binomial log-probability per count, with mean mu and inverse
// dispersion theta, and its gradients: the loss of every count VAE step.
//
//   log NB(x; mu, theta) = theta log(theta / (theta + mu)) + x log(mu / (theta + mu))
//                          + lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)
//
// Two implementations with one contract, x, mu (B, G) and theta (G,), (1, G)
// or (B, G) -> (B, G):
// - nb_log_prob_reference(): LibTorch ops, any device; autograd gives the
//   gradients. Above theta = 10 it evaluates the lgamma difference by its
//   Stirling expansion (float32 cancellation otherwise); both branches are
//   computed for every element and one is kept.
// - the fused CPU kernel: one pass that computes, per element, only the
//   branch it needs, and the gradients for mu and theta alongside (saved for
//   backward: nothing is recomputed). A zero count, most of a droplet matrix,
//   needs no lgamma at all (the lgamma difference vanishes); lgamma(x + 1) of
//   small integer counts comes from a table. Arithmetic in double.
// - the fused CUDA kernel (kernels/cuda/nb_log_prob.cu): the same per-element
//   term (decode/nb_term.hpp), one thread per count; built with CUDA only.
// nb_log_prob() picks the fused kernel of the tensors' device (CPU, or CUDA
// where built) for float / double tensors with x not requiring a gradient,
// the reference otherwise.
#pragma once

#include "decode/nb_term.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// decode/nb_term.hpp explains both.
inline constexpr double kNbEps = nb::kEps;
inline constexpr double kStirlingTheta = nb::kStirlingTheta;

Tensor nb_log_prob_reference(const Tensor& x, const Tensor& mu, const Tensor& theta);
Tensor nb_log_prob_fused_cpu(const Tensor& x, const Tensor& mu, const Tensor& theta);
// Throws std::invalid_argument unless the core was built with CUDA and the tensors are on the GPU.
Tensor nb_log_prob_fused_cuda(const Tensor& x, const Tensor& mu, const Tensor& theta);
Tensor nb_log_prob(const Tensor& x, const Tensor& mu, const Tensor& theta);

}  // namespace exprflow
