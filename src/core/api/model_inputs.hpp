// Checks of what a front end hands a generative model, shared by every
// GenerativeModel implementation: the genes of the data and the condition
// codes of its cells.
#pragma once

#include <string>
#include <vector>

#include "condition/condition_encoder.hpp"
#include "data/cell_batch.hpp"

namespace exprflow {

// The covariate name the front end's one categorical condition goes by.
constexpr const char* kConditionCovariate = "condition";

// The covariates a model's networks embed: the condition, when it has levels.
std::vector<CovariateSpec> condition_covariates(size_t n_levels);

// Throws std::invalid_argument naming the first gene that differs.
void check_model_genes(const std::vector<std::string>& model_genes, const ExpressionSource& data);

// One covariate column ("condition") from 0-based level codes, checked
// against n_levels (0: an unconditional model, every code must be -1).
// Empty codes: all null.
CovariateColumns condition_columns(const std::vector<int>& codes, size_t n_cells, size_t n_levels);

}  // namespace exprflow
