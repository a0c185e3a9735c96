// Checks of what a front end hands a generative model, shared by every
// GenerativeModel implementation: the genes of the data and the covariate
// codes of its cells.
#pragma once

#include <string>
#include <vector>

#include "condition/condition_encoder.hpp"
#include "data/cell_batch.hpp"
#include "data/perturbation_shift.hpp"
#include "exprflow/api.hpp"

namespace exprflow {

// The covariate name a one-condition model's covariate goes by
// (GenerativeModel::create with condition levels).
constexpr const char* kConditionCovariate = "condition";

// Throws std::invalid_argument unless names are non-empty and unique and
// every covariate has at least one level.
void check_covariates(const std::vector<Covariate>& covariates);

// A perturbation covariate's members in a fixed order (first appearance in
// its levels): the rows of its member embedding.
std::vector<std::string> perturbation_member_names(const Covariate& covariate);
// Per level of `levels`, its members' indices into perturbation_member_names();
// a member the covariate has not got is std::invalid_argument naming it, or
// with `skip_unknown` left out (the latent shift's stand-ins carry it).
std::vector<std::vector<int64_t>> level_member_indices(const Covariate& covariate,
                                                       const std::vector<std::string>& levels,
                                                       bool skip_unknown = false);

// The perturbation covariates' levels as one end of a call sees them (the
// model's, then the call's extra levels), for perturbation_shift().
std::vector<PerturbationLevels> perturbation_levels(const std::vector<Covariate>& covariates,
                                                    const CellCovariates& cells);

// What the networks embed: one table per covariate.
std::vector<CovariateSpec> covariate_specs(const std::vector<Covariate>& covariates);

// Throws std::invalid_argument naming the first gene that differs.
void check_model_genes(const std::vector<std::string>& model_genes, const ExpressionSource& data);

// One column per covariate of the model from `cells` (by name, or the codes
// of a one-covariate model), n_cells codes each, checked: names the model
// knows, lengths, codes in [-1, levels) (perturbations: [-1, levels + extra
// levels)). Covariates not given are -1. Perturbation covariates also get
// their members and doses per cell (CovariateColumns::sets); members the
// model has no embedding for are an error, or with `skip_unknown_members`
// left out of the sets (see level_member_indices()).
CovariateColumns covariate_columns(const CellCovariates& cells, size_t n_cells,
                                   const std::vector<Covariate>& covariates, bool skip_unknown_members = false);

// The codes of cell `i` in the model's covariate order.
std::vector<int> codes_of_cell(const CovariateColumns& columns, const std::vector<Covariate>& covariates, size_t i);

// One id per cell for its combination of codes (ids in order of first
// appearance): the strata of a stratified split.
std::vector<int> combination_strata(const CovariateColumns& columns, const std::vector<Covariate>& covariates,
                                    size_t n_cells);

}  // namespace exprflow
