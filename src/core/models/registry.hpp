// Architecture registry: a name -> a network composition and its defaults.
//
// Later tokenizations ("pathway_tokens", "grn", "rank", ...) add one entry
// here; everything downstream (objective, sampler, trainer, R API) is shared.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "exprflow/options.hpp"
#include "models/denoising_network.hpp"

namespace exprflow {

std::vector<std::string> registered_architectures();

// Defaults of one architecture, including the objective settings it uses
// ("architecture", "objective", "schedule", "timesteps", ...). An unknown
// name is an error that lists the valid ones.
Options architecture_defaults(const std::string& architecture);

std::shared_ptr<DenoisingNetworkImpl> build_network(const Options& spec, int64_t n_genes,
                                                    int64_t n_levels);

}  // namespace exprflow
