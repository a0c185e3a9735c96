// A small network per gene on that gene's own noisy value, shifted by the
// cell's context, added to a gene-space prediction:
//
//   value[b, g] += sum_k w[g, k] * silu(x_t[b, g] * u[g, k] + e[g, k] + (A context[b])[k])
//
// Why: a tokenizer that compresses the cell (rank_tokens keeps n_top genes,
// set_tokens pools into a few tokens) leaves most genes' predictions blind to
// their own value but for the input skip, which is linear in it. Sampling then
// keeps a Gaussian share of each gene's starting noise, while real
// standardised expression is far from Gaussian (a spike at zero and a tail).
// k hidden units per gene give each gene a nonlinear map of its own value;
// the context (time, condition and the backbone's pooled tokens) moves the
// map per cell. The output weights w start at zero, so a new head leaves the
// network's prediction as it was.
#pragma once

#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class GeneValueHeadImpl : public torch::nn::Module {
 public:
  // width: hidden units per gene (k); context_dim: the width of the context vector.
  GeneValueHeadImpl(int64_t n_genes, int64_t context_dim, int64_t width);

  // (B, G) noisy values, (B, context_dim) context -> (B, G) to add to the prediction.
  Tensor forward(const Tensor& x_t, const Tensor& context);

 private:
  Tensor input_scale_;   // (G, k) u
  Tensor input_shift_;   // (G, k) e
  Tensor output_;        // (G, k) w, zero at the start
  Linear context_{nullptr};  // context_dim -> k, shared by every gene
};
TORCH_MODULE(GeneValueHead);

}  // namespace exprflow
