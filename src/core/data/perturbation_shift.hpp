// Latent shifts towards perturbation combinations no training cell has:
// the additive model of combinatorial perturbations (GEARS', CPA's and
// scGen's baseline), on the latent centroids. Torch-free.
//
// For a cell moving from `from` to `to`, where a perturbation covariate's
// level at one end (say to = A+B) has no training cells, that end's mean
// is modelled as its context's control mean plus each member's own effect
// in that context:
//   mean(ctx, A+B) ~ mean(ctx, ctrl) + sum_m [mean(ctx, m) - mean(ctx, ctrl)],
// so the shift is
//   shift(from', to') + D(to) - D(from),
// with x' = x with the covariate at its control level, and D(x) the shift
// from x' to x itself where x's level has training cells, else the sum of
// its members' shifts from x' (each member needs a level of its own with
// training cells, or stand-ins: otherwise std::invalid_argument naming it).
// Each shift is CovariateCentroids::shift: the cell's own context where it
// holds both ends, else the average over contexts (weighted by how alike
// they start, CovariateCentroids::set_context_bandwidth()).
//
// A member with no training cells of its own (a target never perturbed in
// training) may have stand-ins: single-member levels with training cells
// and weights summing to 1 (e.g. the targets whose genes are most
// co-expressed with it, data/coexpression_stand_ins.hpp); its shift is
// then the weighted sum of theirs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "data/covariate_centroids.hpp"

namespace exprflow {

// A level whose shift stands in for a member's, and its weight.
struct StandIn {
  int level = 0;
  double weight = 0;
};

// One perturbation covariate's levels as one end of a call sees them (the
// model's levels, then that call's extra levels).
struct PerturbationLevels {
  int covariate = 0;  // its index among the model's covariates
  int control = 0;    // the code of its control level
  std::vector<std::string> names;         // per code: the level
  std::vector<std::vector<int>> singles;  // per code: each member's single-member level code (-1: none)
  std::vector<std::vector<std::string>> members;  // per code: the members, for errors
  std::map<std::string, std::vector<StandIn>> stand_ins;  // members without training cells (may be empty)
};

std::vector<float> perturbation_shift(const CovariateCentroids& centroids,
                                      const std::vector<PerturbationLevels>& from_levels,
                                      const std::vector<PerturbationLevels>& to_levels, const std::vector<int>& from,
                                      const std::vector<int>& to);

}  // namespace exprflow
