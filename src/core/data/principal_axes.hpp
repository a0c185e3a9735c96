// Principal axes of a cells x genes matrix by randomised SVD (Halko,
// Martinsson & Tropp 2011: a Gaussian sketch, power iterations with QR
// re-orthonormalisation, then the SVD of the small projected matrix). Used to
// fit the count VAE's input projection (vae_input = "pca") on training cells.
#pragma once

#include <cstdint>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

struct PrincipalAxes {
  Tensor mean;      // (G,) column means
  Tensor rotation;  // (G, k) orthonormal loadings, largest variance first
};

// The first k principal axes of x (n, G); k is capped at min(n - 1, G).
// Each axis's sign is fixed (its largest-magnitude loading is positive), so
// the same data and seed give the same axes.
PrincipalAxes principal_axes(const Tensor& x, int64_t k, uint64_t seed);

}  // namespace exprflow
