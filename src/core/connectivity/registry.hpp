// Connectivity architecture registry: a name -> a pair network and its
// defaults. An unknown name is an error that lists the valid ones.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectivity/pair_network.hpp"
#include "exprflow/connectivity.hpp"
#include "exprflow/options.hpp"

namespace exprflow {

std::vector<std::string> connectivity_architectures();

// Every setting of one architecture with its default, including
// "architecture", "seed" and "device".
Options connectivity_defaults(const std::string& architecture);

// `spec` must be complete (defaults merged).
std::shared_ptr<PairNetworkImpl> build_pair_network(const Options& spec, const GeneEmbedding& genes);

}  // namespace exprflow
