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

// Draws counts for one cell. logcounts: (G,) log1p-normalised expression.
void sample_nb_counts(const float* logcounts, int n_genes, double library_size,
                      const std::vector<double>& theta, std::mt19937_64& rng, int32_t* counts);

}  // namespace exprflow
