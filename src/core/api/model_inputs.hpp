// Checks of what a front end hands a generative model, shared by every
// GenerativeModel implementation: the genes of the data and the covariate
// codes of its cells.
#pragma once

#include <string>
#include <vector>

#include "condition/condition_encoder.hpp"
#include "data/cell_batch.hpp"
#include "exprflow/api.hpp"

namespace exprflow {

// The covariate name a one-condition model's covariate goes by
// (GenerativeModel::create with condition levels).
constexpr const char* kConditionCovariate = "condition";

// Throws std::invalid_argument unless names are non-empty and unique and
// every covariate has at least one level.
void check_covariates(const std::vector<Covariate>& covariates);

// What the networks embed: one table per covariate.
std::vector<CovariateSpec> covariate_specs(const std::vector<Covariate>& covariates);

// Throws std::invalid_argument naming the first gene that differs.
void check_model_genes(const std::vector<std::string>& model_genes, const ExpressionSource& data);

// One column per covariate of the model from `cells` (by name, or the codes
// of a one-covariate model), n_cells codes each, checked: names the model
// knows, lengths, codes in [-1, levels). Covariates not given are -1.
CovariateColumns covariate_columns(const CellCovariates& cells, size_t n_cells,
                                   const std::vector<Covariate>& covariates);

// The codes of cell `i` in the model's covariate order.
std::vector<int> codes_of_cell(const CovariateColumns& columns, const std::vector<Covariate>& covariates, size_t i);

// One id per cell for its combination of codes (ids in order of first
// appearance): the strata of a stratified split.
std::vector<int> combination_strata(const CovariateColumns& columns, const std::vector<Covariate>& covariates,
                                    size_t n_cells);

}  // namespace exprflow
