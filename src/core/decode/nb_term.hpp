// One count's negative-binomial log-probability and its derivatives in mu
// and theta (decode/nb_log_prob.hpp has the formula), written once for the
// fused CPU kernel and the CUDA kernel (kernels/cuda/nb_log_prob.cu): plain
// arithmetic in double, no LibTorch, callable on the host and the device.
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define EXPRFLOW_HOST_DEVICE __host__ __device__
#else
#define EXPRFLOW_HOST_DEVICE
#endif

namespace exprflow {
namespace nb {

// Added to mu inside its logs so expected counts of exactly zero stay finite (scVI's convention).
constexpr double kEps = 1e-8;
// Above this theta the lgamma difference is taken by its Stirling expansion:
// the plain difference of two numbers near theta log(theta) loses everything
// to cancellation as theta grows (float32 at theta = 1e8: tens of nats), while
// the expansion tends to the Poisson log-probability. At z >= 10 the truncated
// series is off by < 1/(1680 z^7) < 1e-10, so switching here is seamless.
constexpr double kStirlingTheta = 10.0;

// lgamma(z) - [(z - 1/2) log z - z + log(2 pi) / 2] for z >= kStirlingTheta.
EXPRFLOW_HOST_DEVICE inline double stirling_correction(double z) {
  const double r = 1 / z, r2 = r * r;
  return r * (1.0 / 12 - r2 * (1.0 / 360 - r2 / 1260));
}

// d/dz of stirling_correction(z).
EXPRFLOW_HOST_DEVICE inline double stirling_correction_derivative(double z) {
  const double r2 = 1 / (z * z);
  return r2 * (-1.0 / 12 + r2 * (1.0 / 120 - r2 / 252));
}

// digamma(z) for z > 0: the recurrence psi(z) = psi(z + 1) - 1/z up to z >= 10,
// then the asymptotic series (next term < 1e-12 there).
EXPRFLOW_HOST_DEVICE inline double digamma(double z) {
  double shift = 0;
  for (; z < 10; z += 1) shift -= 1 / z;
  const double r = 1 / z, r2 = r * r;
  return shift + log(z) - 0.5 * r - r2 * (1.0 / 12 - r2 * (1.0 / 120 - r2 * (1.0 / 252 - r2 / 240)));
}

struct Term {
  double log_prob, d_mu, d_theta;
};

// One element's log-probability and its derivatives in mu and theta, the
// branch for its theta only. lgamma_x1 = lgamma(x + 1), which the caller
// takes from a table on the CPU.
EXPRFLOW_HOST_DEVICE inline Term term(double x, double mu, double theta, double lgamma_x1) {
  const double log1p_mu = log1p(mu / theta);
  const double share = mu / (theta + mu);  // d/dtheta of -theta log1p(mu / theta) is -log1p_mu + share
  if (x == 0) {
    // lgamma(theta) - lgamma(theta) - lgamma(1) and every x term vanish.
    return {-theta * log1p_mu, -theta / (theta + mu), -log1p_mu + share};
  }
  const double log_mu = log(mu + kEps);
  if (theta <= kStirlingTheta) {
    const double log_theta_mu = log(theta + mu + kEps);
    return {-theta * log1p_mu + x * (log_mu - log_theta_mu) + lgamma(x + theta) - lgamma(theta) - lgamma_x1,
            -theta / (theta + mu) + x / (mu + kEps) - x / (theta + mu + kEps),
            -log1p_mu + share - x / (theta + mu + kEps) + digamma(x + theta) - digamma(theta)};
  }
  // lgamma(x + theta) - lgamma(theta)
  //   = x log(x + theta) + (theta - 1/2) log1p(x / theta) - x + c(x + theta) - c(theta),
  // with x log(x + theta) - x log(theta + mu) written as x (log1p(x / theta) - log1p(mu / theta)).
  const double log1p_x = log1p(x / theta);
  const double value = x * log_mu - theta * log1p_mu + x * (log1p_x - log1p_mu) + (theta - 0.5) * log1p_x - x +
                       stirling_correction(x + theta) - stirling_correction(theta) - lgamma_x1;
  const double d_mu = x / (mu + kEps) - theta / (theta + mu) - x / (theta + mu);
  const double d_theta = -log1p_mu + share - x * x / (theta * (theta + x)) + x * mu / (theta * (theta + mu)) +
                         log1p_x - (theta - 0.5) * x / (theta * (theta + x)) +
                         stirling_correction_derivative(x + theta) - stirling_correction_derivative(theta);
  return {value, d_mu, d_theta};
}

}  // namespace nb
}  // namespace exprflow
