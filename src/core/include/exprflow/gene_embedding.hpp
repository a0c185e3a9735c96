// Fixed gene vectors (Gene2Vec or a derived embedding) as a front end hands
// them to the core: torch-free, so the glue compiles fast. Gene tokens
// (tokenize/gene_tokens.hpp) add them to each gene's expression token; the
// connectivity models take them at creation.
#pragma once

#include <cstdint>
#include <vector>

namespace exprflow {

struct GeneEmbedding {
  int n_genes = 0;
  int dim = 0;                       // 200 for Gene2Vec
  std::vector<float> values;         // genes x dim, row-major
  std::vector<uint8_t> has_vector;   // per gene: 0 -> the model learns this gene's vector
};

}  // namespace exprflow
