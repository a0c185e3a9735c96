// The fused CPU negative-binomial log-probability against its reference
// (LibTorch ops, autograd gradients): values and gradients for mu and theta,
// float32 and double, per-gene and per-cell theta on both sides of the
// Stirling switch, zero and large counts; which one nb_log_prob() runs; errors.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "decode/nb_log_prob.hpp"

namespace exprflow {
namespace {

at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

struct Inputs {
  Tensor x, mu, theta;  // double
};

// Droplet-like counts (70% zeros, a heavy tail, one non-integer column), means
// including exact zeros, and thetas from 1e-3 to 1e6 across the switch at 10.
Inputs inputs(int64_t B, const std::vector<int64_t>& theta_shape) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Generator g = seeded(3);
  const int64_t G = 12;
  Tensor mu = at::exp(at::randn({B, G}, g, f64) * 2);                                       // (B, G)
  mu.index_put_({0, 0}, 0.0);
  mu.index_put_({1, 5}, 0.0);
  Tensor x = at::poisson(mu * 2, g) * (at::rand({B, G}, g, f64) > 0.7).to(at::kDouble);  // (B, G)
  x.index_put_({2, 3}, 900.0);
  x.index_put_({1, 5}, 4.0);                                   // a count where mu = 0
  x.select(1, 11).mul_(1.37);                                  // non-integer counts take std::lgamma
  const std::vector<double> per_gene{1e-3, 0.2, 1, 4, 9.999, 10, 10.001, 25, 300, 1e4, 1e6, 2};
  Tensor theta = at::tensor(per_gene, f64);                    // (G,)
  if (theta_shape.size() == 2) {
    theta = theta.view({1, G}).expand({theta_shape[0], G}).contiguous();
    if (theta_shape[0] > 1) theta = theta * at::exp(at::randn({theta_shape[0], G}, g, f64) * 0.3);  // (B, G)
  }
  return {x, mu, theta};
}

void expect_close(const Tensor& got, const Tensor& want, double rel, const std::string& what) {
  const Tensor a = got.to(at::kDouble), b = want.to(at::kDouble);
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const Tensor tolerance = rel * (1 + b.abs());
  const Tensor bad = (a - b).abs() > tolerance;
  EXPECT_FALSE(bad.any().item<bool>()) << what << ": got\n" << a.masked_select(bad) << "\nwant\n" << b.masked_select(bad);
}

TEST(NbLogProbKernel, FusedMatchesReferenceAndItsGradients) {
  const int64_t B = 6;
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    const double rel = dtype == at::kFloat ? 2e-5 : 1e-9;
    for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{12}, {1, 12}, {B, 12}}) {
      const Inputs in = inputs(B, shape);
      const std::string what = std::string(dtype == at::kFloat ? "float" : "double") + " theta " +
                               std::to_string(shape.size()) + "-d (" + std::to_string(shape[0]) + ")";
      // The reference in double on the same (rounded) inputs.
      const Tensor x = in.x.to(dtype);
      const Tensor mu = in.mu.to(dtype).requires_grad_(true), theta = in.theta.to(dtype).requires_grad_(true);
      const Tensor mu_ref = mu.detach().to(at::kDouble).requires_grad_(true);
      const Tensor theta_ref = theta.detach().to(at::kDouble).requires_grad_(true);

      const Tensor fused = nb_log_prob_fused_cpu(x, mu, theta);                              // (B, G)
      const Tensor reference = nb_log_prob_reference(x.to(at::kDouble), mu_ref, theta_ref);  // (B, G)
      ASSERT_EQ(fused.scalar_type(), dtype) << what;
      expect_close(fused, reference, rel, what + " log-probability");

      // An uneven upstream gradient, so the theta reduction is weighted per row.
      const Tensor weight = at::rand({B, 12}, seeded(9), at::TensorOptions().dtype(at::kDouble));
      (fused * weight.to(dtype)).sum().backward();
      (reference * weight).sum().backward();
      ASSERT_EQ(theta.grad().sizes(), theta.sizes()) << what;
      expect_close(mu.grad(), mu_ref.grad(), 10 * rel, what + " d/dmu");
      expect_close(theta.grad(), theta_ref.grad(), 10 * rel, what + " d/dtheta");
    }
  }
}

TEST(NbLogProbKernel, CpuFloatRunsTheFusedKernelOtherwiseTheReference) {
  const Inputs in = inputs(4, {12});
  const Tensor x = in.x.to(at::kFloat), mu = in.mu.to(at::kFloat).requires_grad_(true);
  const Tensor theta = in.theta.to(at::kFloat);
  const Tensor fused = nb_log_prob(x, mu, theta);
  ASSERT_TRUE(fused.grad_fn());
  EXPECT_NE(fused.grad_fn()->name().find("FusedNbLogProb"), std::string::npos) << fused.grad_fn()->name();
  // Counts that want a gradient (no use in training, but allowed) take the reference.
  const Tensor through_reference = nb_log_prob(x.clone().requires_grad_(true), mu, theta);
  EXPECT_EQ(through_reference.grad_fn()->name().find("FusedNbLogProb"), std::string::npos);
  expect_close(through_reference, fused, 2e-5, "reference path");
  // Without grad mode: no graph, same values.
  torch::NoGradGuard no_grad;
  const Tensor plain = nb_log_prob(x, mu, theta);
  EXPECT_FALSE(plain.requires_grad());
  EXPECT_TRUE(at::equal(plain, fused.detach()));
}

TEST(NbLogProbKernel, RejectsMismatchedShapesAndTypes) {
  const Tensor x = at::zeros({3, 4}), mu = at::ones({3, 4});
  EXPECT_THROW(nb_log_prob(x, mu, at::ones({5})), std::invalid_argument);
  EXPECT_THROW(nb_log_prob(x, mu, at::ones({2, 4})), std::invalid_argument);
  EXPECT_THROW(nb_log_prob(x, at::ones({3, 5}), at::ones({4})), std::invalid_argument);
  EXPECT_THROW(nb_log_prob_fused_cpu(x, mu.to(at::kDouble), at::ones({4})), std::invalid_argument);
  EXPECT_THROW(nb_log_prob_fused_cpu(x.to(at::kInt), mu.to(at::kInt), at::ones({4}, at::kInt)), std::invalid_argument);
}

}  // namespace
}  // namespace exprflow
