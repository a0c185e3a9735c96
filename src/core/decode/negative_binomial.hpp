// Negative binomial counts around generated expression. Torch-free.
//
// Generated cells come out of the diffusion model as log-normalised
// expression. To return counts, each cell gets a library size drawn from the
// training cells of its condition, the expression is turned into expected
// counts mu_g = p_g * L (p = normalised expm1 of the expression), and counts are
// drawn from NB(mu_g, theta_g) as a gamma-Poisson mixture, with per-gene
// dispersions theta_g estimated on the training data.
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

// Expected counts of one cell: mu_g = p_g * library_size with p the
// normalised expm1 of the expression (the mean sample_nb_counts draws around).
void expected_counts(const float* logcounts, int n_genes, double library_size, double* mu);

// Log-likelihood (nats) of observed counts of one cell under NB(mu_g, theta_g),
// theta >= kPoissonTheta meaning Poisson. mu is floored at kMinExpectedCount so
// a count where the model expects exactly zero costs a large, finite penalty.
constexpr double kMinExpectedCount = 1e-6;
double nb_log_likelihood(const float* counts, const double* mu, int n_genes,
                         const std::vector<double>& theta);

// Draws counts for one cell. logcounts: (G,) log1p-normalised expression.
void sample_nb_counts(const float* logcounts, int n_genes, double library_size,
                      const std::vector<double>& theta, std::mt19937_64& rng, int32_t* counts);

}  // namespace exprflow
