// Stand-ins for a perturbation target that no training cell has: the
// trained targets most alike to it, by one of two kinds of knowledge.
//
// Co-expression, when the target is one of the measured genes: the trained
// targets whose genes are most co-expressed with it. A gene's co-expression profile is its
// correlation with every gene over observed cells; two genes are alike when
// their profiles correlate (genes of one module or pathway share partners
// even when they correlate weakly with each other, which is what GEARS takes
// from its gene-ontology graph for genes without perturbation data). Knocking
// out alike genes is expected to act alike: the unseen target's latent shift
// is the similarity-weighted mean of its stand-ins' (data/perturbation_shift.hpp).
//
// Shared terms, for any gene a knowledge base names (measured or not): each
// gene's terms are the gene sets it belongs to (Hallmark, KEGG, Reactome;
// GEARS' gene-ontology similarity is the same measure over GO terms) or its
// closed neighbourhood in a regulatory network (itself, its regulators and
// its targets); two genes are alike by the Jaccard index of their terms.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
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

// Each gene's terms (gene sets, or network neighbours).
using GeneTerms = std::map<std::string, std::set<std::string>>;

// GeneTerms from (gene, term) pairs, e.g. the transfer options
// stand_in_genes / stand_in_terms; std::invalid_argument when the two
// lengths differ.
GeneTerms gene_terms_of(const std::vector<std::string>& genes, const std::vector<std::string>& terms);

// The stand-ins of gene `target` among `candidates` ((gene, level) pairs: the
// trained single-target levels whose target `terms` names): the `k` with the
// largest positive Jaccard index of terms, weighted by it (weights sum to 1);
// when none shares a term (or `terms` does not name the target), every
// candidate with equal weight. Empty when there are no candidates.
std::vector<StandIn> shared_term_stand_ins(const GeneTerms& terms, const std::string& target,
                                           const std::vector<std::pair<std::string, int>>& candidates, int64_t k);

// How much to trust stand-ins against the average of the candidates, chosen
// on the trained targets themselves (leave one target out): each candidate
// j's own latent shift a_j is predicted by its stand-ins among the other
// candidates, s_j (weights of `left_out_stand_ins[j]`, whose `level` is an
// index into `shifts`), and by the plain average of the others' shifts,
// m_j. The weight w of the blend w s + (1 - w) m that fits a best in least
// squares, w = sum_j <a_j - m_j, s_j - m_j> / sum_j |s_j - m_j|^2, clipped
// to [0, 1]; 1 (the stand-ins alone) when fewer than three candidates or
// stand-ins equal to the average leave nothing to fit.
double validated_stand_in_weight(const std::vector<std::vector<float>>& shifts,
                                 const std::vector<std::vector<StandIn>>& left_out_stand_ins);

// The stand-ins blended with the average: each stand-in's weight times
// `weight`, and every candidate level with (1 - weight) / their number.
std::vector<StandIn> blend_with_average(const std::vector<StandIn>& stand_ins, const std::vector<int>& candidate_levels,
                                        double weight);

}  // namespace exprflow
