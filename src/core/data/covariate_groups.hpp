// Cells of a minibatch grouped by their covariate codes: the cells that share
// every code (unconditional ones, -1, form their own group). Minibatch OT
// pairing pairs noise within a group; cells-as-tokens models attend within a
// group and share one noise time per group.
#pragma once

#include <vector>

#include "data/cell_batch.hpp"

namespace exprflow {

// Row indices of each group, ascending within a group; groups ordered by their
// codes. No covariates: one group of all n cells.
std::vector<std::vector<int64_t>> covariate_groups(const Covariates& covariates, int64_t n);

// `values` (n, ...) with every group's rows replaced by the group's first
// row: one draw per group (a noise time shared by the cells of a set).
Tensor shared_within_groups(const Tensor& values, const std::vector<std::vector<int64_t>>& groups);

// The groups cut into consecutive chunks of at most `set_size` rows, as one set
// id per row: (n,) int64 on `device`.
Tensor cell_set_ids(const std::vector<std::vector<int64_t>>& groups, int64_t n, int64_t set_size,
                    const at::Device& device);

}  // namespace exprflow
