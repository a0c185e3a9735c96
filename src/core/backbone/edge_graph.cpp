#include "backbone/edge_graph.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace exprflow {

EdgeGraph EdgeGraph::from_pairs(const std::vector<std::pair<int64_t, int64_t>>& regulator_target, int64_t n_genes) {
  if (n_genes < 1) throw std::invalid_argument("a gene network needs at least one gene");
  std::vector<std::vector<int64_t>> incoming(n_genes);
  for (const auto& [regulator, target] : regulator_target) {
    if (regulator < 0 || regulator >= n_genes || target < 0 || target >= n_genes) {
      throw std::invalid_argument("resource 'grn': edge " + std::to_string(regulator) + " -> " +
                                  std::to_string(target) + " names a gene outside 0.." + std::to_string(n_genes - 1));
    }
    if (regulator != target) incoming[target].push_back(regulator);
  }
  EdgeGraph g;
  g.n_genes = n_genes;
  g.offsets.reserve(n_genes + 1);
  g.offsets.push_back(0);
  for (int64_t i = 0; i < n_genes; ++i) {
    std::vector<int64_t>& in = incoming[i];
    std::sort(in.begin(), in.end());
    in.erase(std::unique(in.begin(), in.end()), in.end());
    g.n_network_edges += static_cast<int64_t>(in.size());
    in.insert(std::upper_bound(in.begin(), in.end(), i), i);  // the self-loop, in order
    g.sources.insert(g.sources.end(), in.begin(), in.end());
    g.offsets.push_back(static_cast<int64_t>(g.sources.size()));
  }
  return g;
}

EdgeGraph EdgeGraph::with_cell_node() const {
  if (cell_node) throw std::invalid_argument("the gene graph has a cell node already");
  EdgeGraph g;
  g.n_genes = n_genes + 1;
  g.cell_node = true;
  g.n_network_edges = n_network_edges;
  g.offsets.reserve(g.n_genes + 1);
  g.sources.reserve(sources.size() + 2 * n_genes + 1);
  g.offsets.push_back(0);
  for (int64_t i = 0; i < n_genes; ++i) {
    g.sources.insert(g.sources.end(), sources.begin() + offsets[i], sources.begin() + offsets[i + 1]);
    g.sources.push_back(n_genes);  // the cell node, the largest index: sources stay ascending
    g.offsets.push_back(static_cast<int64_t>(g.sources.size()));
  }
  for (int64_t j = 0; j <= n_genes; ++j) g.sources.push_back(j);  // the cell node: every gene and itself
  g.offsets.push_back(static_cast<int64_t>(g.sources.size()));
  return g;
}

EdgeGraph EdgeGraph::from_resources(const Resources& resources, int64_t n_genes) {
  const auto found = resources.find("grn");
  if (found == resources.end()) {
    throw std::invalid_argument(
        "this architecture needs the resource 'grn' (regulator -> target gene pairs, e.g. from TRRUST)");
  }
  const NamedTensor& grn = found->second;
  if (grn.shape.size() != 2 || grn.shape[1] != 2) {
    throw std::invalid_argument("resource 'grn' must be edges x 2 (regulator, target gene indices)");
  }
  std::vector<std::pair<int64_t, int64_t>> pairs;
  pairs.reserve(grn.shape[0]);
  for (int64_t e = 0; e < grn.shape[0]; ++e) {
    const float r = grn.values[2 * e], t = grn.values[2 * e + 1];
    if (r != std::floor(r) || t != std::floor(t)) {
      throw std::invalid_argument("resource 'grn' must hold whole gene indices, found " + std::to_string(r) +
                                  " -> " + std::to_string(t));
    }
    pairs.emplace_back(static_cast<int64_t>(r), static_cast<int64_t>(t));
  }
  return from_pairs(pairs, n_genes);
}

}  // namespace exprflow
