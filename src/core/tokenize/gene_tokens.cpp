#include "tokenize/gene_tokens.hpp"
#include "runtime/linear.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace exprflow {

void check_gene_embedding(const GeneEmbedding& genes) {
  if (genes.n_genes < 1) throw std::invalid_argument("the gene embedding has no genes");
  if (genes.dim < 1) throw std::invalid_argument("the gene embedding has no dimensions (dim = 0)");
  const size_t expected = static_cast<size_t>(genes.n_genes) * genes.dim;
  if (genes.values.size() != expected) {
    throw std::invalid_argument("the gene embedding holds " + std::to_string(genes.values.size()) +
                                " values; " + std::to_string(genes.n_genes) + " genes x " +
                                std::to_string(genes.dim) + " dims need " + std::to_string(expected));
  }
  if (genes.has_vector.size() != static_cast<size_t>(genes.n_genes)) {
    throw std::invalid_argument("the gene embedding needs one has_vector flag per gene (" +
                                std::to_string(genes.n_genes) + "), got " +
                                std::to_string(genes.has_vector.size()));
  }
  for (int g = 0; g < genes.n_genes; ++g) {
    if (!genes.has_vector[g]) continue;
    for (int d = 0; d < genes.dim; ++d) {
      if (!std::isfinite(genes.values[static_cast<size_t>(g) * genes.dim + d])) {
        throw std::invalid_argument("the embedding vector of gene " + std::to_string(g + 1) +
                                    " has a non-finite value (dimension " + std::to_string(d + 1) + ")");
      }
    }
  }
}

GeneTokenizerImpl::GeneTokenizerImpl(const GeneEmbedding& genes, int64_t d_model, int64_t n_bins,
                                     bool learned_bins, double bin_temperature)
    : n_genes_(genes.n_genes) {
  check_gene_embedding(genes);
  const int64_t G = genes.n_genes, E = genes.dim;
  binning_ = register_module("binning", ExpressionBinning(n_bins, learned_bins, bin_temperature));
  bin_embedding_ = register_module("bin_embedding", Linear(n_bins, E));
  projection_ = register_module("projection", Linear(E, d_model));

  Tensor fixed = at::tensor(genes.values, at::TensorOptions().dtype(at::kFloat)).view({G, E}).clone();  // (G, E)
  std::vector<int64_t> missing;
  double sum_sq = 0;
  long count = 0;
  for (int64_t g = 0; g < G; ++g) {
    if (!genes.has_vector[g]) {
      missing.push_back(g);
    } else {
      for (int64_t d = 0; d < E; ++d) sum_sq += double(genes.values[g * E + d]) * genes.values[g * E + d];
      count += E;
    }
  }
  Tensor missing_index = at::tensor(missing, at::TensorOptions().dtype(at::kLong));  // (M,)
  if (!missing.empty()) fixed.index_fill_(0, missing_index, 0.0);
  fixed_ = register_buffer("fixed_vectors", fixed);
  missing_index_ = register_buffer("missing_index", missing_index);
  // Learned vectors start at the scale of the given ones (RMS), so a gene
  // without a vector is neither drowned out nor dominant at initialisation.
  const double rms = count > 0 ? std::sqrt(sum_sq / count) : 1.0 / std::sqrt(double(E));
  learned_ = register_parameter("learned_vectors",
                                at::randn({static_cast<int64_t>(missing.size()), E}) * (rms > 0 ? rms : 1.0));
}

Tensor GeneTokenizerImpl::gene_vectors() {
  if (missing_index_.numel() == 0) return fixed_;
  return fixed_.index_copy(0, missing_index_, learned_);  // (G, E)
}

Tensor GeneTokenizerImpl::forward(const Tensor& x) {
  if (x.dim() != 2 || x.size(1) != n_genes_) {
    throw std::invalid_argument("gene tokens need (profiles, " + std::to_string(n_genes_) +
                                ") expression, got " + std::to_string(x.size(-1)) + " genes");
  }
  // Bin rows through both linear maps: (n_bins, E) @ (E, D) = (n_bins, D), no bias.
  Tensor bin_rows = at::matmul(bin_embedding_->weight.t(), projection_->weight.t());       // (n, D)
  Tensor gene_rows = projection_->forward(gene_vectors() + bin_embedding_->bias);           // (G, D)
  Tensor bins;
  if (binning_->learned()) {
    bins = at::matmul(binning_->forward(x), bin_rows);  // (B, G, n) @ (n, D) -> (B, G, D)
  } else {
    bins = at::embedding(bin_rows, binning_->indices(x));  // (B, G, D): the one-hot product as a gather
  }
  return bins + gene_rows.unsqueeze(0);  // (B, G, D)
}

}  // namespace exprflow
