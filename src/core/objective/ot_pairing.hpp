// Minibatch optimal-transport pairing of noise and data (Tong et al. 2023;
// CFGen pairs its flow-matching minibatches this way): within a minibatch,
// noise draws are permuted so that the total squared distance between each
// cell and its noise is minimal. Straighter conditional paths make the learned
// ODE easier to integrate in few steps.
#pragma once

#include <vector>

#include "data/cell_batch.hpp"

namespace exprflow {

// Exact minimum-cost assignment of a square cost matrix (n x n, row-major):
// row i gets column result[i]. Hungarian algorithm with potentials, O(n^3).
std::vector<int64_t> min_cost_assignment(const std::vector<double>& cost, int64_t n);

// `noise` (B, G) reordered so that cell i of `x0` (B, G) gets its OT partner;
// cells are only paired with noise of the same covariate codes (so the
// coupling is conditional).
Tensor pair_noise(const Tensor& x0, const Tensor& noise, const Covariates& covariates);

}  // namespace exprflow
