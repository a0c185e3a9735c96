// Data-driven gene modules by non-negative matrix factorisation
// (data/nmf.hpp) of the training cells' log-normalised expression,
// X (cells x genes) ~ W H with k modules. The modules stand in for a GMT's gene sets
// (`gene_sets = "nmf"` of the pathway tokenizer): a gene joins every module
// that carries at least `min_share` of its loading; genes no module
// dominates are left to the residual token.
#pragma once

#include <cstdint>

#include "data/expression_source.hpp"
#include "exprflow/api.hpp"

namespace exprflow {

struct NmfSettings {
  int64_t modules = 20;
  int iterations = 200;
  int max_cells = 5000;     // a seeded sample of cells beyond this many
  double min_share = 0.3;   // of a gene's loading, for membership
  uint64_t seed = 1;
};

// Module membership as the "gene_sets" resource: modules x genes, 0/1, rows
// named nmf_1, nmf_2, ... (modules no gene joins are dropped), columns the
// source's genes.
NamedTensor nmf_gene_modules(const ExpressionSource& data, const NmfSettings& settings);

}  // namespace exprflow
