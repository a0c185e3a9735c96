#include "data/principal_axes.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <stdexcept>

namespace exprflow {

namespace {

// Extra sketch columns and power iterations: enough for the leading axes of
// expression data to match an exact SVD closely (tested against one).
constexpr int64_t kOversampling = 10;
constexpr int kPowerIterations = 4;

Tensor orthonormal_basis(const Tensor& a) { return std::get<0>(at::linalg_qr(a)); }

}  // namespace

PrincipalAxes principal_axes(const Tensor& x, int64_t k, uint64_t seed) {
  if (x.dim() != 2 || x.size(0) < 2 || x.size(1) < 1) {
    throw std::invalid_argument("principal axes need a matrix of at least 2 cells and 1 gene");
  }
  const int64_t n = x.size(0), G = x.size(1);
  k = std::min({k, n - 1, G});
  if (k < 1) throw std::invalid_argument("principal axes: k must be at least 1");
  const Tensor data = x.to(at::kDouble);  // (n, G): double, so that the QR steps lose nothing
  PrincipalAxes out;
  const Tensor mean = data.mean(0);                  // (G,)
  const Tensor centred = data - mean;                 // (n, G)
  const int64_t p = std::min({k + kOversampling, n, G});
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const Tensor sketch = at::normal(0.0, 1.0, {G, p}, generator, at::TensorOptions().dtype(at::kDouble))
                            .to(x.device());                    // (G, p)
  Tensor q = orthonormal_basis(centred.matmul(sketch));         // (n, p)
  for (int i = 0; i < kPowerIterations; ++i) {
    q = orthonormal_basis(centred.t().matmul(q));               // (G, p)
    q = orthonormal_basis(centred.matmul(q));                   // (n, p)
  }
  const Tensor small = q.t().matmul(centred);                   // (p, G)
  const Tensor vh = std::get<2>(at::linalg_svd(small, /*full_matrices=*/false));  // (p, G)
  Tensor rotation = vh.slice(0, 0, k).t().contiguous();          // (G, k)
  // Sign: the largest-magnitude loading of each axis positive.
  const Tensor largest = rotation.abs().argmax(0);                          // (k,)
  const Tensor signs = rotation.gather(0, largest.unsqueeze(0)).sign();     // (1, k)
  rotation = rotation * at::where(signs == 0, at::ones_like(signs), signs);
  out.mean = mean.to(x.scalar_type());
  out.rotation = rotation.to(x.scalar_type());
  return out;
}

}  // namespace exprflow
