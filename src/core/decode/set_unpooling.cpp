#include "decode/set_unpooling.hpp"

#include <stdexcept>

namespace exprflow {

SetUnpoolingImpl::SetUnpoolingImpl(int64_t n_genes, int64_t token_dim, int64_t pool_heads, int64_t heads)
    : n_genes_(n_genes), heads_(heads) {
  if (heads != 1 && heads != 2) throw std::invalid_argument("a gene decoder has 1 or 2 heads");
  queries_ = register_parameter("queries", at::randn({n_genes, token_dim}));
  unpool_ = register_module("unpool", AttentionLayer(token_dim, pool_heads, /*mlp_ratio=*/2.0, /*dropout=*/0.0,
                                                     /*cross=*/true));
  out_ = register_module("linear_out", torch::nn::Linear(torch::nn::LinearOptions(token_dim, heads).bias(false)));
  bias_ = register_parameter("bias", at::zeros({heads * n_genes}));
  torch::NoGradGuard no_grad;
  out_->weight.zero_();
}

GeneOutput SetUnpoolingImpl::forward(const Tensor& tokens) {
  const int64_t B = tokens.size(0);
  const Tensor queries = queries_.unsqueeze(0).expand({B, -1, -1});              // (B, G, D)
  const Tensor genes = unpool_->forward(queries, tokens);                         // (B, G, D)
  Tensor out = out_->forward(genes).permute({0, 2, 1}).reshape({B, heads_ * n_genes_}) + bias_;  // (B, heads*G)
  return split_heads(out, n_genes_, heads_);                                      // (B, G) [x 2]
}

}  // namespace exprflow
