// Randomised principal axes (data/principal_axes.hpp) against the exact SVD
// of the centred matrix, their sign rule and the cap on k.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "data/principal_axes.hpp"

using namespace exprflow;

namespace {

// n cells x G genes: rank-r structure with decreasing strengths plus noise,
// shifted so that centring matters.
Tensor low_rank_cells(int64_t n, int64_t G, int64_t r, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  const auto f = at::TensorOptions().dtype(at::kFloat);
  Tensor scores = at::normal(0.0, 1.0, {n, r}, g, f);                        // (n, r)
  Tensor strength = at::linspace(6.0, 2.0, r, f);                             // (r,)
  Tensor loadings = at::normal(0.0, 1.0, {r, G}, g, f) / std::sqrt(static_cast<double>(G));  // (r, G)
  Tensor noise = at::normal(0.0, 0.05, {n, G}, g, f);                        // (n, G)
  return (scores * strength).matmul(loadings) * 10.0 + noise + 3.0;          // (n, G)
}

}  // namespace

TEST(PrincipalAxes, MatchTheExactSvdOfTheCentredMatrix) {
  const Tensor x = low_rank_cells(300, 80, 6, 1);
  const PrincipalAxes axes = principal_axes(x, 5, 7);
  ASSERT_EQ(axes.rotation.sizes(), (at::IntArrayRef{80, 5}));
  ASSERT_EQ(axes.mean.sizes(), (at::IntArrayRef{80}));
  EXPECT_TRUE(at::allclose(axes.mean, x.mean(0), 1e-5, 1e-5));
  const Tensor centred = (x - x.mean(0)).to(at::kDouble);
  const Tensor exact = std::get<2>(at::linalg_svd(centred, false)).slice(0, 0, 5).t();  // (G, 5)
  for (int64_t j = 0; j < 5; ++j) {
    const double cosine = axes.rotation.select(1, j).to(at::kDouble).dot(exact.select(1, j)).item<double>();
    EXPECT_GT(std::abs(cosine), 0.999) << "axis " << j;
  }
  // Orthonormal columns.
  const Tensor gram = axes.rotation.t().matmul(axes.rotation);  // (5, 5)
  EXPECT_TRUE(at::allclose(gram, at::eye(5), 1e-4, 1e-4));
  // Sign rule: each axis's largest-magnitude loading is positive.
  for (int64_t j = 0; j < 5; ++j) {
    const Tensor column = axes.rotation.select(1, j);
    EXPECT_GT(column[column.abs().argmax().item<int64_t>()].item<float>(), 0.0f) << "axis " << j;
  }
}

TEST(PrincipalAxes, SameSeedSameAxesAndKIsCapped) {
  const Tensor x = low_rank_cells(40, 30, 3, 2);
  EXPECT_TRUE(at::equal(principal_axes(x, 4, 3).rotation, principal_axes(x, 4, 3).rotation));
  // 5 cells have at most 4 axes of variance.
  const PrincipalAxes few = principal_axes(x.slice(0, 0, 5), 10, 3);
  EXPECT_EQ(few.rotation.size(1), 4);
  EXPECT_THROW(principal_axes(x.slice(0, 0, 1), 2, 3), std::invalid_argument);
}
