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
// nb_log_prob() picks the fused kernel for float / double CPU tensors with
// x not requiring a gradient, the reference otherwise.
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// Added to mu inside its logs so expected counts of exactly zero stay finite (scVI's convention).
inline constexpr double kNbEps = 1e-8;
// Above this theta the lgamma difference is taken by its Stirling expansion:
// the plain difference of two numbers near theta log(theta) loses everything
// to cancellation as theta grows (float32 at theta = 1e8: tens of nats), while
// the expansion tends to the Poisson log-probability. At z >= 10 the truncated
// series is off by < 1/(1680 z^7) < 1e-10, so switching here is seamless.
inline constexpr double kStirlingTheta = 10.0;

Tensor nb_log_prob_reference(const Tensor& x, const Tensor& mu, const Tensor& theta);
Tensor nb_log_prob_fused_cpu(const Tensor& x, const Tensor& mu, const Tensor& theta);
Tensor nb_log_prob(const Tensor& x, const Tensor& mu, const Tensor& theta);

}  // namespace exprflow
