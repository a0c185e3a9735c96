// Set tokens (seed "Option C", scLDM's set pooling): the cell as an unordered
// set of gene tokens (gene embedding + value embedding, no positions), pooled
// into m latent tokens by pooling-by-multihead-attention: m learned seed
// vectors attend over the G gene tokens (one cross-attention layer with its
// MLP), so the summary is invariant to the order of the genes and costs
// O(m G) per cell. decode/set_unpooling.hpp maps the m tokens back to genes.
//
// With summary_token, one more token follows the m pooled ones
// (tokenize/summary_token.hpp): pooling is a softmax-weighted mean of gene
// tokens, in which a gene's value enters through one shared direction.
#pragma once

#include "connectivity/attention_layer.hpp"
#include "tokenize/gene_value_tokens.hpp"
#include "tokenize/summary_token.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

class SetPoolingTokensImpl : public TokenizerImpl {
 public:
  SetPoolingTokensImpl(int64_t n_genes, int64_t n_tokens, int64_t token_dim, int64_t pool_heads,
                       bool summary_token = false);

  // The gene tokens are never built: their LayerNorm and key / value
  // projection are computed from the shared gene part and the value vector
  // (AttentionLayerImpl::forward_affine_memory).
  Tensor forward(const Tensor& x) override;  // (B, G) -> (B, T, D), T = m [+ 1 summary token]
  // The same function, the gene tokens (B, G, D) built and attended to: what
  // the tests compare forward() against.
  Tensor forward_reference(const Tensor& x);  // (B, G) -> (B, T, D)
  int64_t n_tokens() const override { return n_tokens_ + (summary_ ? 1 : 0); }
  int64_t token_dim() const override { return token_dim_; }

 private:
  int64_t n_tokens_, token_dim_;
  Linear summary_{nullptr};         // G -> D, where a summary token follows the pooled ones
  GeneValueTokens genes_{nullptr};  // (B, G) -> (B, G, D)
  Tensor seeds_;                    // (m, D)
  AttentionLayer pool_{nullptr};
};
TORCH_MODULE(SetPoolingTokens);

}  // namespace exprflow
