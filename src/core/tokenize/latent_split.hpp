// The latent-split tokenizer: a VAE latent code z (B, d) cut into n_tokens
// consecutive chunks of d / n_tokens values, each projected to width D and
// given a learned position embedding -- the way scLDM-style latent models put
// a short latent through a DiT or an SSM. The chunks carry no gene meaning, so
// the tokenizer reports no gene loadings.
#pragma once

#include "runtime/linear.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

class LatentSplitImpl : public TokenizerImpl {
 public:
  // latent_dim must be a multiple of n_tokens.
  LatentSplitImpl(int64_t latent_dim, int64_t n_tokens, int64_t token_dim);

  Tensor forward(const Tensor& z) override;  // (B, d) -> (B, T, D)
  Tensor content(const Tensor& z) override;  // (B, d) -> (B, T, D), no positions
  int64_t n_tokens() const override { return n_tokens_; }
  int64_t token_dim() const override { return token_dim_; }

 private:
  int64_t n_tokens_, chunk_, token_dim_;
  Linear in_{nullptr};  // chunk -> D, shared by the chunks
  Tensor position_;                // (T, D)
};
TORCH_MODULE(LatentSplit);

}  // namespace exprflow
