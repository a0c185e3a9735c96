// Gene tokens: one token per gene of a profile (a brain region's expression,
// later a cell's), its binned expression + the gene's embedding vector. The
// connectivity models tokenise regions with it; gene-token tokenizers of the
// generative models (rank, set, GRN gene tokens) are meant to reuse it.
//
// Seed design: one-hot bin -> Linear -> embedding width E (200 for Gene2Vec),
// plus the gene's fixed vector, then Linear -> d_model. Both maps are linear,
// so the token equals P(W b + c + v_g) + p = (P W) b + (P (c + v_g) + p): the
// bins and the genes are projected once per step ((n_bins, D) and (G, D))
// instead of forming a (B, G, E) tensor -- the same function, computed
// without the 200-wide intermediate that dominates memory at 1,645 genes.
#pragma once

#include "exprflow/gene_embedding.hpp"
#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"
#include "tokenize/expression_binning.hpp"

namespace exprflow {

class GeneTokenizerImpl : public torch::nn::Module {
 public:
  // Genes with has_vector == 0 get a learned vector (a parameter row each).
  GeneTokenizerImpl(const GeneEmbedding& genes, int64_t d_model, int64_t n_bins, bool learned_bins,
                    double bin_temperature);

  Tensor forward(const Tensor& x);  // (B, G) in [0, 1] -> (B, G, D)
  Tensor gene_vectors();            // (G, E): fixed rows + learned rows

  int64_t n_genes() const { return n_genes_; }
  ExpressionBinning& binning() { return binning_; }

 private:
  int64_t n_genes_;
  ExpressionBinning binning_{nullptr};
  Linear bin_embedding_{nullptr};  // n_bins -> E
  Linear projection_{nullptr};                // E -> D
  Tensor fixed_;          // (G, E) buffer; zero rows for genes without a vector
  Tensor missing_index_;  // (M,) int64 buffer: genes without a vector
  Tensor learned_;        // (M, E) parameter
};
TORCH_MODULE(GeneTokenizer);

// Checks an embedding (sizes, finite values of genes that have one).
void check_gene_embedding(const GeneEmbedding& genes);

}  // namespace exprflow
