#include "tokenize/gene_set_layout.hpp"

#include <stdexcept>

namespace exprflow {

GeneSetLayout GeneSetLayout::from_resources(const Resources& resources, int64_t n_genes) {
  const auto found = resources.find("gene_sets");
  if (found == resources.end()) {
    throw std::invalid_argument(
        "this architecture needs the resource 'gene_sets' (sets x genes membership, e.g. from a GMT file)");
  }
  const NamedTensor& sets = found->second;
  if (sets.shape.size() != 2 || sets.shape[1] != n_genes || sets.shape[0] < 1) {
    throw std::invalid_argument("resource 'gene_sets' must be sets x genes with one column per gene of the model (" +
                                std::to_string(n_genes) + ") and at least one set");
  }
  GeneSetLayout layout;
  layout.n_genes = n_genes;
  layout.n_sets = sets.shape[0];
  std::vector<int> holders(n_genes, 0);
  layout.offsets.push_back(0);
  for (int64_t s = 0; s < layout.n_sets; ++s) {
    for (int64_t g = 0; g < n_genes; ++g) {
      const float v = sets.values[s * n_genes + g];
      if (v != 0.0f && v != 1.0f) {
        throw std::invalid_argument("resource 'gene_sets' must hold only 0 and 1 (membership), found " +
                                    std::to_string(v));
      }
      if (v == 1.0f) {
        layout.pair_token.push_back(s);
        layout.pair_gene.push_back(g);
        ++holders[g];
      }
    }
    const std::string name = sets.row_names.empty() ? "set_" + std::to_string(s + 1) : sets.row_names[s];
    if (static_cast<int64_t>(layout.pair_gene.size()) == layout.offsets.back()) {
      throw std::invalid_argument("resource 'gene_sets': set '" + name + "' holds none of the model's genes");
    }
    layout.offsets.push_back(static_cast<int64_t>(layout.pair_gene.size()));
    layout.token_names.push_back(name);
  }
  for (int64_t g = 0; g < n_genes; ++g) {
    if (holders[g] > 0) continue;
    layout.pair_token.push_back(layout.n_sets);
    layout.pair_gene.push_back(g);
    holders[g] = 1;
    ++layout.n_residual_genes;
  }
  if (layout.n_residual_genes > 0) {
    layout.offsets.push_back(static_cast<int64_t>(layout.pair_gene.size()));
    layout.token_names.push_back(kResidualTokenName);
  }
  layout.gene_share.resize(n_genes);
  for (int64_t g = 0; g < n_genes; ++g) layout.gene_share[g] = 1.0f / static_cast<float>(holders[g]);
  return layout;
}

Tensor layout_index(const std::vector<int64_t>& v) {
  return at::tensor(v, at::TensorOptions().dtype(at::kLong));
}

Tensor layout_values(const std::vector<float>& v) {
  return at::tensor(v, at::TensorOptions().dtype(at::kFloat));
}

}  // namespace exprflow
