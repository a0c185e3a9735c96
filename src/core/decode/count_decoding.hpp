// From generated log-normalised expression back to counts. Torch-free.
//
// The diffusion models learn the distribution of x = log1p(count / L * 1e4)
// of observed cells: their samples are observations, sampling noise
// included. Counts are therefore recovered by inverting that transform for a
// library size L (drawn from training cells of the same condition), not by
// drawing counts again around x: that would add the sampling noise twice
// (measured on PBMC held-out cells: kNN real-vs-generated AUC 0.99 with an NB
// draw, 0.87 with rounding; see compare_models()). Expected counts that are
// not whole numbers are rounded stochastically, which keeps their mean.
// Rounding so that each value's expected log value is kept instead
// (decode/log_rounding.hpp) was measured and is worse for generated cells:
// state_mlp on held-out example data (seed 1), MMD 0.0187 against 0.0082,
// energy distance 0.656 against 0.338, 65.0% zeros against 73.3% (real
// 71.4%): a sample's small values above 0 became counts far too often.
//
// L is drawn apart from x, though x carries the L of the cell it resembles
// (which genes are detected, and at what granularity). For real cells that
// mismatch is costly: training cells of held-out PBMC3k kept with their own
// L score MMD / energy distance / kNN AUC 0.0016 / 0.074 / 0.501 against the
// held-out cells, with L redrawn from their cell type 0.0053 / 0.225 / 0.564
// (seeds 1-3; example data 0.0044 / 0.180 / 0.478 against 0.0080 / 0.315 /
// 0.516, and 0.0045 / 0.185 / 0.477 with L drawn among the 5 of the type
// closest in size). Gene-space models therefore draw "matched" sizes by
// default (data/library_sizes.hpp): the size of one of the 5 training cells
// of the type whose number of detected genes (log values above 0.25) is
// closest to the generated cell's. Prototyped on state_mlp's samples,
// held-out example data, seeds 1-2: MMD / energy / kNN AUC / condition
// accuracy 0.0054 / 0.219 / 0.578 / 0.861 against 0.0081 / 0.331 / 0.615 /
// 0.827 for sizes drawn at random. Measured and not kept: the network
// conditioned on log L (a zero-initialised MLP added to the time /
// condition vector; L drawn first, then x for it), state_mlp, example data,
// seeds 1-3, 0.0093 / 0.372 / 0.578 / 0.797 against 0.0086 / 0.350 / 0.593
// / 0.796 without (library-size quintiles per cell type as a second
// covariate moved the same way: 0.0094 / 0.388 / 0.541 / 0.833); and L chosen
// as the size at which rounding x gives as many detected genes as the
// training cell of that size has, which recovered nothing even for real
// cells (seed 1: 0.0085 / 0.362 against 0.0087 / 0.374 redrawn).
#pragma once

#include <cstdint>
#include <random>

namespace exprflow {

// mu_g = p_g * library_size, p the normalised expm1 of the expression
// (negative expression counts as zero). logcounts: (G,).
void expected_counts(const float* logcounts, int n_genes, double library_size, double* mu);

// Counts of one cell: floor(mu_g) plus a Bernoulli(frac(mu_g)) draw.
void round_counts(const float* logcounts, int n_genes, double library_size, std::mt19937_64& rng,
                  int32_t* counts);

}  // namespace exprflow
