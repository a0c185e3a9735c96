// Latent tokens: an MLP maps the whole expression vector to m learned tokens
// of width d (seed design "Option 1"). No gene is tied to a token; the model
// learns which genes each token summarises (issue 3 reads that back out).
//
//   Linear(G, hidden) -> LayerNorm -> GELU -> Linear(hidden, m*d) -> (m, d)
//   + learned positional embedding (so tokens are distinguishable to attention)
#pragma once

#include "runtime/linear.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

class LatentTokenEncoderImpl : public TokenizerImpl {
 public:
  LatentTokenEncoderImpl(int64_t n_genes, int64_t hidden, int64_t n_tokens, int64_t token_dim);

  // Tokens without the positional embedding: what embeddings are pooled from.
  Tensor content(const Tensor& x) override;  // (B, G) -> (B, m, d)
  // The linear path gene -> token, ignoring LayerNorm and GELU: per token the
  // norm over its d dimensions of (W_out W_in)[token, :, gene]. (m, G)
  Tensor weight_loadings() const override;
  // Tokens as the backbone sees them.
  Tensor forward(const Tensor& x) override;  // (B, G) -> (B, m, d)

  int64_t n_tokens() const override { return n_tokens_; }
  int64_t token_dim() const override { return token_dim_; }

 private:
  int64_t n_tokens_, token_dim_;
  Linear in_{nullptr}, out_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  Tensor position_;  // (1, m, d)
};
TORCH_MODULE(LatentTokenEncoder);

}  // namespace exprflow
