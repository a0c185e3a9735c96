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
// Rounding to the nearest count is far worse the other way (state_mlp,
// seeds 1-3, ranked sizes as below; MMD / energy distance / kNN AUC, zeros):
// example data 0.0342 / 1.33 / 0.768, 78.6% zeros, against 0.0083 / 0.338
// / 0.541, 73.2% stochastically (real 71.4%); PBMC3k 0.0376 / 1.51 / 0.814
// against 0.0068 / 0.272 / 0.624. So does scaling the nearest counts to
// the drawn size (0.0283 / 1.10 / 0.738 on the example data), dropping
// expected counts below 0.3 before the stochastic rounding (0.0296 / 1.15 /
// 0.737), and the nearest count in log space (0.0154 / 0.603 / 0.642). The
// small values a sample has where a real cell has zeros (below) carry the
// genes a real cell of the type detects now and then: at the level of
// counts the samples detect slightly fewer genes than real cells, not more.
// Blurred towards their mean log value, they give those genes too few
// counts (expm1 of a mean log value is below the mean of expm1); gene-space
// models correct each gene's mean share per combination of levels from a
// calibration sample (decode/gene_share_calibration.hpp).
//
// L is drawn apart from x, though x carries the L of the cell it resembles
// (which genes are detected, and at what granularity). For real cells that
// mismatch is costly: training cells of held-out PBMC3k kept with their own
// L score MMD / energy distance / kNN AUC 0.0016 / 0.074 / 0.501 against the
// held-out cells, with L redrawn from their cell type 0.0053 / 0.225 / 0.564
// (seeds 1-3; example data 0.0044 / 0.180 / 0.478 against 0.0080 / 0.315 /
// 0.516, and 0.0045 / 0.185 / 0.477 with L drawn among the 5 of the type
// closest in size). Gene-space models therefore draw "matched" sizes by
// default (data/library_sizes.hpp): the training cells' sizes of the type,
// given to the generated cells in the order of their detected genes (log
// values above 0.25), so the sizes keep the type's distribution.
//
// A sample is not a real cell, though: its zeros are blurred. state_mlp's
// samples have 76-78% of their values above 0 (real cells 28%) and detect
// ~1200 genes at the 0.25 level against ~560 for real cells of either
// held-out set, whatever the sampler (Euler 50 or 200 steps, Heun 50 or
// 100: the same 59.6% of values above 0.25 on the example data). An
// earlier "matched" rule took the 5 training cells nearest in the number of
// detected genes; for such samples those are the deepest cells of the
// type, and it drew sizes about twice the real ones (mean log size 8.1-8.2
// against 7.4). That scored well (example data, seeds 1-3: 0.0049 / 0.204
// / 0.586 / 0.841) only because rounding a blurred sample at a deeper size
// adds less noise, and the cells' sizes were wrong. On the same samples
// of state_mlp (one fit per seed, seeds 1-3, sizes drawn in R; MMD /
// energy distance / kNN AUC / condition accuracy), sizes at random / ranked
// scored 0.0093 / 0.375 / 0.579 / 0.822 and 0.0084 / 0.345 / 0.548 / 0.825
// on the example data, 0.0082 / 0.323 / 0.648 / 0.878 and 0.0066 / 0.266 /
// 0.626 / 0.868 on PBMC3k; sizes stratified the same way but given in a
// random order scored as the random ones (0.0092 / 0.366 / 0.593 / 0.813,
// 0.0080 / 0.311 / 0.645 / 0.883), so the gain is the matching. With the
// package's own draws (compare_latent.R, seeds 1-3) state_mlp scores
// 0.0079 / 0.328 / 0.569 / 0.796 on the example data and 0.0069 / 0.277 /
// 0.608 / 0.875 on PBMC3k, pathway_tokens 0.0088 / 0.351 / 0.658 / 0.878 on
// PBMC3k. Mapping each gene's sample values, per type, to
// the training cells' quantiles by their rank among the sample's cells
// before rounding (the network kept for the dependence between genes and
// the type, the marginals taken from the training cells), with ranked
// sizes, scored 0.0066 / 0.275 / 0.522 / 0.826 and 0.0040 / 0.168 / 0.560 /
// 0.884 (independent NB per type on PBMC3k 0.0098 / 0.365 / 0.734 / 0.901,
// NB copula 0.0087 / 0.329 / 0.650 / 0.837). But that ranks each gene
// among the very cells being scored, which makes their marginals match the
// training cells' exactly; with the model's quantiles taken from a separate
// calibration sample instead (300 cells per type, example data, seed 1) it
// scored 0.0084 / 0.346 / 0.576 / 0.778 against 0.0092 / 0.380 / 0.579 /
// 0.778 for ranked sizes alone. Not built: most of its gain depends on the
// cells a call asks for together.
// Measured and not kept: the network
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

// Counts of one cell: floor(mu_g) plus a Bernoulli(frac(mu_g)) draw, from
// its expected counts (round_expected_counts) or its expression.
void round_expected_counts(const double* mu, int n_genes, std::mt19937_64& rng, int32_t* counts);
void round_counts(const float* logcounts, int n_genes, double library_size, std::mt19937_64& rng,
                  int32_t* counts);

}  // namespace exprflow
