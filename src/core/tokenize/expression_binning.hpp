// Expression binning for gene tokens (tokenize/gene_tokens.hpp).
//
// Expression is scaled to [0, 1]; a gene token carries its level as
// one of n_bins equal-width bins (the seed design), or -- with learned bins --
// as a soft assignment to bins whose boundaries are trained. The soft version
// tends to the hard one-hot as the temperature goes to zero, so the two share
// every downstream layer.
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// x in [0, 1], any shape -> int64 bins of the same shape. Bin k holds
// [k/n, (k+1)/n); a value on an edge goes to the upper bin and 1 to the last.
Tensor hard_bins(const Tensor& x, int64_t n_bins);

// Soft assignment to the bins delimited by sorted interior `edges` (n - 1,):
// x (...) -> (..., n), non-negative, rows summing to 1. Bin k gets
// sigmoid((x - e_k) / T) - sigmoid((x - e_{k+1}) / T) with e_0 = -inf and
// e_n = +inf: one-hot of the hard bin as T -> 0 (for x off the edges).
Tensor soft_bins(const Tensor& x, const Tensor& edges, double temperature);

class ExpressionBinningImpl : public torch::nn::Module {
 public:
  // learned: the bin widths are parameters (a softmax keeps the edges sorted
  // inside [0, 1]); they start equal, i.e. at the hard bins' edges.
  ExpressionBinningImpl(int64_t n_bins, bool learned, double temperature);

  // (B, G) -> int64 (B, G) bin indices; hard bins only.
  Tensor indices(const Tensor& x) const;
  // (B, G) -> (B, G, n_bins): one-hot (hard) or soft assignment (learned).
  Tensor forward(const Tensor& x);
  // (n_bins - 1,) interior edges in use.
  Tensor edges() const;

  int64_t n_bins() const { return n_bins_; }
  bool learned() const { return learned_; }

 private:
  int64_t n_bins_;
  bool learned_;
  double temperature_;
  Tensor width_logits_;  // (n_bins,) learned bins only
};
TORCH_MODULE(ExpressionBinning);

}  // namespace exprflow
