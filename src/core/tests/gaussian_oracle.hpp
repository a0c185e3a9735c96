// The exact denoiser of Gaussian data, for any objective: with per-gene
// x0_g ~ N(mu_g, s_g^2) and x_t = alpha x0 + sigma eps,
//
//   E[x0 | x_t] = mu + alpha s^2 / (alpha^2 s^2 + sigma^2) (x_t - alpha mu)
//
// and E[eps | x_t] follows from the path. The oracle returns what the
// objective's network is trained to output (eps, v or x0 for DDPM; the
// velocity eps - x0 for flow), so samplers driven by it must reproduce
// N(mu, s^2) exactly up to discretisation error.
#pragma once

#include <string>

#include "objective/objective.hpp"

namespace exprflow {
namespace testing_oracle {

// output: "eps", "v", "x0" (DDPM) or "velocity" (flow).
inline Denoiser gaussian_oracle(const Objective& objective, Tensor mu, Tensor s, std::string output) {
  return [&objective, mu, s, output](const Tensor& x_t, const Tensor& t, const Covariates&) {
    Tensor tt = t.to(at::kCPU).to(at::kDouble).contiguous();
    std::vector<double> a(tt.size(0)), g(tt.size(0));
    for (int64_t i = 0; i < tt.size(0); ++i) {
      a[i] = objective.alpha(tt[i].item<double>());
      g[i] = objective.sigma(tt[i].item<double>());
    }
    Tensor alpha = at::tensor(a).to(at::kFloat).unsqueeze(1), sigma = at::tensor(g).to(at::kFloat).unsqueeze(1);  // (B, 1)
    Tensor total = alpha.pow(2) * s.pow(2) + sigma.pow(2);                                                     // (B, G)
    Tensor x0 = mu + alpha * s.pow(2) / total * (x_t - alpha * mu);                                            // (B, G)
    // (x_t - alpha x0) / sigma in closed form: finite (0) at sigma = 0, where
    // the quotient would divide rounding error by zero (inversion starts there).
    Tensor eps = sigma / total * (x_t - alpha * mu);                                                           // (B, G)
    Tensor value = output == "eps" ? eps : output == "v" ? alpha * eps - sigma * x0 : output == "x0" ? x0 : eps - x0;
    return GeneOutput{value, at::zeros_like(x_t)};
  };
}

}  // namespace testing_oracle
}  // namespace exprflow
