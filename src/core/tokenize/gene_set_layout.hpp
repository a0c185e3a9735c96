// Which genes each gene-set token reads and writes: the "gene_sets" resource
// (sets x genes, 1 = member) laid out as (token, gene) pairs grouped by
// token, so that the pathway tokenizer and decoder can treat each token's
// genes as one contiguous slice of a pair-indexed weight. Genes in no set
// form one more token, the residual, so that every gene is read and written.
//
// Memory is O(pairs), not O(sets x genes): Hallmark on 2,000 PBMC3k genes is
// 44 sets (5+ genes each) with 1,498 memberships, plus 1,196 residual genes.
#pragma once

#include <string>
#include <vector>

#include "exprflow/api.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// The residual token's name.
constexpr const char* kResidualTokenName = "residual_genes";

struct GeneSetLayout {
  int64_t n_genes = 0;
  int64_t n_sets = 0;            // tokens from the resource's rows
  int64_t n_residual_genes = 0;  // genes in no set (one more token when > 0)
  std::vector<std::string> token_names;  // the sets' names (or set_<k>), then the residual token's
  std::vector<int64_t> offsets;          // tokens + 1: the pairs of token t are [offsets[t], offsets[t+1])
  std::vector<int64_t> pair_token;       // E: token of each pair, non-decreasing
  std::vector<int64_t> pair_gene;        // E: gene of each pair
  std::vector<float> gene_share;         // genes: 1 / (number of tokens holding the gene)

  int64_t n_tokens() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t n_pairs() const { return static_cast<int64_t>(pair_gene.size()); }
  int64_t token_size(int64_t t) const { return offsets[t + 1] - offsets[t]; }
  // Every token's pair count: split_with_sizes() by it cuts pair-ordered
  // tensors per token with one backward (a cat), where a narrow() per token
  // would allocate a zeroed full-size gradient each.
  std::vector<int64_t> token_sizes() const {
    std::vector<int64_t> sizes(static_cast<size_t>(n_tokens()));
    for (int64_t t = 0; t < n_tokens(); ++t) sizes[static_cast<size_t>(t)] = token_size(t);
    return sizes;
  }

  // From resources["gene_sets"]: shape {sets, n_genes}, every value 0 or 1,
  // every set with at least one gene. Throws std::invalid_argument naming
  // the resource and what is wrong (missing, shape, values, an empty set).
  static GeneSetLayout from_resources(const Resources& resources, int64_t n_genes);
};

// Builds a registered int64 / float buffer from a layout vector.
Tensor layout_index(const std::vector<int64_t>& v);  // (n,) int64
Tensor layout_values(const std::vector<float>& v);   // (n,) float

}  // namespace exprflow
