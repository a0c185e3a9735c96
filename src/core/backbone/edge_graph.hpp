// A regulatory network as the sparse attention pattern of gene tokens: for
// every target gene, the genes it may attend to (its regulators, and itself),
// stored by target (CSR), so that attention runs over edges, never over
// genes x genes.
#pragma once

#include <cstdint>
#include <vector>

#include "exprflow/api.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

struct EdgeGraph {
  int64_t n_genes = 0;  // nodes, the cell node included
  bool cell_node = false;  // node n_genes - 1 is the cell's, not a gene's (with_cell_node())
  int64_t n_network_edges = 0;  // distinct regulator -> target edges, self-loops excluded
  std::vector<int64_t> offsets;  // n_genes + 1: the sources of target i are sources[offsets[i] .. offsets[i+1])
  std::vector<int64_t> sources;  // regulators of each target, then the target itself; ascending

  int64_t n_edges() const { return static_cast<int64_t>(sources.size()); }  // with the self-loops

  // From resources["grn"]: shape {edges, 2}, each row a 0-based (regulator,
  // target) pair of gene indices. Duplicates and self-edges are dropped;
  // every gene gets a self-loop. Throws std::invalid_argument naming the
  // resource and what is wrong.
  static EdgeGraph from_resources(const Resources& resources, int64_t n_genes);
  // A graph from explicit pairs (tests, benchmarks).
  static EdgeGraph from_pairs(const std::vector<std::pair<int64_t, int64_t>>& regulator_target, int64_t n_genes);
  // This graph plus one node for the whole cell (a virtual node, as in
  // graph networks): every gene attends to it as well as to its regulators,
  // and it attends to every gene and itself. Networks cover few of a data
  // set's genes (TRRUST touches 207 of PBMC3k's 2,000 most variable genes):
  // without it, a gene outside the network sees nothing of the cell but its
  // own value. Adds 2 x genes + 1 edges, still O(edges + genes).
  EdgeGraph with_cell_node() const;
};

}  // namespace exprflow
