// Couplings between cell populations observed at consecutive time points: the
// pairs (and chains across all time points) that a population flow learns to
// move along. A minibatch of each population is coupled by entropic optimal
// transport (equal mass per cell, squared Euclidean cost; Sinkhorn), as OT-CFM (Tong et al. 2023) and multi-marginal flow matching
// (Rohbeck et al. 2024) pair their minibatches.
#pragma once

#include <vector>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// The coupling of a (n, d) and b (m, d): (n, m), non-negative, summing to 1,
// with row sums 1/n and column sums 1/m (to Sinkhorn's tolerance). epsilon is
// a fraction of the mean squared distance: small is close to the exact
// (deterministic) coupling, large tends to independent pairs.
Tensor sinkhorn_coupling(const Tensor& a, const Tensor& b, double epsilon_ratio, int iterations = 100);

// The same coupling by log-domain iterations on tensors (stable for any
// cost): the reference the scaling-domain loops above are tested against,
// and their fallback when the kernel underflows.
Tensor sinkhorn_coupling_reference(const Tensor& a, const Tensor& b, double epsilon_ratio, int iterations = 100);

// `batch` chains through the populations (one (n_k, d) tensor per observed
// time, in time order): a cell drawn from the first population, then at each
// later time a cell drawn from the coupling of the chain's cells with a
// minibatch of `batch` cells of that population. (batch, K, d).
Tensor sample_chains(const std::vector<Tensor>& populations, int64_t batch, double epsilon_ratio,
                     at::Generator& generator);

}  // namespace exprflow
