// Connectivity architecture registry: a name -> a pair network, its
// defaults and its training defaults. An unknown name is an error that lists
// the valid ones.
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

// The training options of one architecture with their defaults (the trainer's
// settings plus memory_budget_mb): shared by the attention models, the
// bilinear baseline's own.
Options connectivity_training_defaults(const std::string& architecture);

// `spec` must be complete (defaults merged).
std::shared_ptr<PairNetworkImpl> build_pair_network(const Options& spec, const GeneEmbedding& genes);

}  // namespace exprflow
