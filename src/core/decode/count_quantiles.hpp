// Counterfactual counts that keep a cell's own noise.
//
// A count x observed under one distribution (a cell's decoded NB / ZINB /
// Poisson law under its own condition) is carried to another (the law after
// a transfer) at the same randomised quantile: u = F_from(x - 1) + v (F_from(x)
// - F_from(x - 1)) with v ~ U(0, 1), then x' = the smallest k with F_to(k) >= u.
// u is uniform when x follows the first law, so x' follows the second; and a
// cell that sat high in a gene's distribution stays high. Mapping a law to
// itself returns x exactly. This is abduction-action-prediction on the
// observation model: the cell's deviation from its decoded mean (what the
// latent code does not explain) is kept instead of drawn afresh.
#pragma once

#include "exprflow/torch_prelude.hpp"

#include <cstdint>

namespace exprflow {

// One cell's and gene's count law: with probability pi a structural zero,
// otherwise NB with mean mu and inverse dispersion theta (infinite: Poisson).
struct CountLaw {
  double mu = 0.0;
  double theta = 0.0;  // std::numeric_limits<double>::infinity() for Poisson
  double pi = 0.0;
};

// P(X <= k); 0 for k < 0. Sums the probabilities from 0 (in log space, so a
// large mean does not underflow the first terms into a wrong sum).
double count_cdf(const CountLaw& law, int64_t k);

// The smallest k with P(X <= k) >= u, for u in [0, 1]. Where rounding keeps
// the sum below u in the far tail, the search stops 40 standard deviations
// above the mean.
int64_t count_quantile(const CountLaw& law, double u);

// The count x of `from` at quantile position v in [0, 1) within its step of
// the CDF, carried to `to` (see the file comment).
int64_t carry_count(const CountLaw& from, const CountLaw& to, int64_t x, double v);

// Elementwise over (B, G): x observed under (mu_from, theta_from, pi_from)
// carried to (mu_to, theta_to, pi_to). theta and pi broadcast to x ((G,) or
// (B, G)); an undefined theta is a Poisson, an undefined pi no structural
// zeros. v ~ U(0, 1) is drawn with `generator` (CPU). Returns counts (B, G)
// as double on the CPU.
Tensor carry_counts(const Tensor& x, const Tensor& mu_from, const Tensor& theta_from, const Tensor& pi_from,
                    const Tensor& mu_to, const Tensor& theta_to, const Tensor& pi_to, at::Generator& generator);

}  // namespace exprflow
