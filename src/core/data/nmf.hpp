// Non-negative matrix factorisation, X (n x G) ~ W H with W, H >= 0 and k
// components: Lee & Seung's (2001) multiplicative updates of the Frobenius
// error, which never increase it. Used for data-driven gene modules
// (data/nmf_modules.hpp).
#pragma once

#include <cstdint>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// Added to every denominator of the factorisation and of the shares derived
// from it: keeps 0 / 0 (a gene or component without loading) at 0.
constexpr double kNmfEpsilon = 1e-10;

struct NmfFactors {
  Tensor cell_scores;   // W (n, k)
  Tensor gene_weights;  // H (k, G)
};

// X ~ W H for a non-negative x (n, G); deterministic for a seed.
NmfFactors nmf(const Tensor& x, int64_t k, int iterations, uint64_t seed);
// The Frobenius error ||x - W H|| / ||x||.
double nmf_relative_error(const Tensor& x, const NmfFactors& f);

}  // namespace exprflow
