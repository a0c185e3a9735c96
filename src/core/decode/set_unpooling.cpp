#include "decode/set_unpooling.hpp"

#include "decode/summary_readout.hpp"

namespace exprflow {

SetUnpoolingImpl::SetUnpoolingImpl(int64_t n_genes, int64_t token_dim, int64_t pool_heads, int64_t heads,
                                   int64_t n_summary)
    : n_genes_(n_genes), heads_(heads) {
  queries_ = register_parameter("queries", at::randn({n_genes, token_dim}));
  unpool_ = register_module("unpool", AttentionLayer(token_dim, pool_heads, /*mlp_ratio=*/2.0, /*dropout=*/0.0,
                                                     /*cross=*/true));
  readout_ = register_module("readout", GeneReadout(n_genes, token_dim, heads, /*per_gene_weights=*/false));
  summary_ = register_summary_readout(*this, n_summary, token_dim, heads, n_genes);
}

GeneOutput SetUnpoolingImpl::with_summary(GeneOutput out, const Tensor& tokens) {
  if (!summary_) return out;
  const Tensor summary = tokens.select(1, tokens.size(1) - 1);                   // (B, D)
  const GeneOutput own = split_heads(summary_->forward(summary), n_genes_, heads_);  // (B, G) [x 2]
  out.value = out.value + own.value;
  if (out.scale.defined()) out.scale = out.scale + own.scale;
  return out;
}

GeneOutput SetUnpoolingImpl::forward(const Tensor& tokens) {
  // (1, G, D) gene queries shared by every cell: normalised and projected once.
  const Tensor read_out = unpool_->forward_read_out(queries_.unsqueeze(0), tokens, readout_->shared_weight());
  return with_summary(readout_->from_read_out(read_out), tokens);  // (B, G, heads) -> (B, G) [x 2]
}

GeneOutput SetUnpoolingImpl::forward_reference(const Tensor& tokens) {
  return with_summary(readout_->forward(unpool_->forward(queries_.unsqueeze(0), tokens)), tokens);  // (B, G) [x 2]
}

}  // namespace exprflow
