// Stand-ins for a perturbation target that no training cell has, when the
// target is one of the measured genes: the trained targets whose genes are
// most co-expressed with it. A gene's co-expression profile is its
// correlation with every gene over observed cells; two genes are alike when
// their profiles correlate (genes of one module or pathway share partners
// even when they correlate weakly with each other, which is what GEARS takes
// from its gene-ontology graph for genes without perturbation data). Knocking
// out alike genes is expected to act alike: the unseen target's latent shift
// is the similarity-weighted mean of its stand-ins' (data/perturbation_shift.hpp).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "data/perturbation_shift.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// (C,) the Pearson correlation of gene `target`'s co-expression profile with
// each of `genes`' profiles, over the cells of `expression` (N, G; any
// per-gene affine scale, e.g. standardised log expression). Genes constant
// over the cells have a zero profile and similarity 0.
Tensor coexpression_similarity(const Tensor& expression, int64_t target, const std::vector<int64_t>& genes);

// The stand-ins of gene `target` among `candidates` ((gene, level) pairs: the
// trained single-target levels whose target is a measured gene): the `k` most
// alike with a positive similarity, weighted by it (weights sum to 1); when
// none is positive, every candidate with equal weight.
// Empty when there are no candidates.
std::vector<StandIn> coexpression_stand_ins(const Tensor& expression, int64_t target,
                                            const std::vector<std::pair<int64_t, int>>& candidates, int64_t k);

}  // namespace exprflow
