#include "decode/set_unpooling.hpp"

namespace exprflow {

SetUnpoolingImpl::SetUnpoolingImpl(int64_t n_genes, int64_t token_dim, int64_t pool_heads, int64_t heads) {
  queries_ = register_parameter("queries", at::randn({n_genes, token_dim}));
  unpool_ = register_module("unpool", AttentionLayer(token_dim, pool_heads, /*mlp_ratio=*/2.0, /*dropout=*/0.0,
                                                     /*cross=*/true));
  readout_ = register_module("readout", GeneReadout(n_genes, token_dim, heads, /*per_gene_weights=*/false));
}

GeneOutput SetUnpoolingImpl::forward(const Tensor& tokens) {
  // (1, G, D) gene queries shared by every cell: normalised and projected once.
  const Tensor read_out = unpool_->forward_read_out(queries_.unsqueeze(0), tokens, readout_->shared_weight());
  return readout_->from_read_out(read_out);  // (B, G, heads) -> (B, G) [x 2]
}

GeneOutput SetUnpoolingImpl::forward_reference(const Tensor& tokens) {
  return readout_->forward(unpool_->forward(queries_.unsqueeze(0), tokens));  // (B, G) [x 2]
}

}  // namespace exprflow
