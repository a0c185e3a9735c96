// Negative binomial observation model. Torch-free.
//
// Per-gene dispersions theta_g estimated on the training cells, and the NB
// log-likelihood with which reconstructions of observed cells are scored
// (reconstruct_cells() in R). Generation does not draw from it: see
// decode/count_decoding.hpp for why.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "data/expression_source.hpp"

namespace exprflow {

// Inverse dispersions above this are treated as Poisson.
constexpr double kPoissonTheta = 1e8;

// Method-of-moments theta per gene on size-factor-normalised counts:
// Var = mu * E[1/s] + mu^2 / theta. Genes without overdispersion get kPoissonTheta.
std::vector<double> estimate_nb_theta(const ExpressionSource& data, const std::vector<int>& cells);

// Log-likelihood (nats) of observed counts of one cell under NB(mu_g, theta_g),
// theta >= kPoissonTheta meaning Poisson. mu is floored at kMinExpectedCount so
// a count where the model expects exactly zero costs a large, finite penalty.
constexpr double kMinExpectedCount = 1e-6;
double nb_log_likelihood(const float* counts, const double* mu, int n_genes,
                         const std::vector<double>& theta);


}  // namespace exprflow
