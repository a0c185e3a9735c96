// The objective table: name -> defaults and factory. Every composition takes
// `objective = "flow" | "ddpm"`; the objective's own settings join the spec.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "exprflow/options.hpp"
#include "objective/objective.hpp"

namespace exprflow {

std::vector<std::string> objective_names();
// The objective's settings with their defaults (without "objective" itself).
Options objective_defaults(const std::string& name);
// From a full spec: reads "objective" and that objective's settings.
std::unique_ptr<Objective> make_objective(const Options& spec);

}  // namespace exprflow
