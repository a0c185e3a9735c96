// A count VAE encoder whose latent code is made of tokens: a tokenizer reads
// the cell, and each of its T tokens gives k latent values through a small
// MLP shared by the tokens:
//
//   x (B, G) log1p-normalised
//     -> tokenizer                                                       (B, T, H)
//     -> per-token MLP, shared by the tokens (LayerNorm, SiLU, H -> H, SiLU)
//     -> H -> 2k: mean and log-variance of the token's k latent values   (B, T, 2k)
//
// Two tokenizers (models/count_vae.hpp, vae_encoder):
// - "gene_sets" (latent_pathway, seed "Hybrid approaches"): PathwayTokens,
//   token_t = sum_{g in set t} x_g w_{t,g} + b_t, so token t is computed from
//   its gene set alone and its posterior reads that pathway's activity; genes
//   in no set feed the residual token (tokenize/gene_set_layout.hpp);
// - "set_tokens" (seed "Option C" as the VAE encoder, scLDM's design):
//   SetPoolingTokens, gene + value tokens pooled into T tokens by
//   cross-attention from learned seeds, invariant to the order of the genes.
//
// The code is token-major: z[:, t*k : (t+1)*k] is token t, which is what the
// latent-split tokenizer of the flow cuts it into (one flow token per encoder
// token). The decoder is the VAE's ordinary MLP over the whole code.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/linear.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

class TokenEncoderImpl : public torch::nn::Module {
 public:
  // tokens: the tokenizer, of width H; per_token: k latent values per token.
  TokenEncoderImpl(std::shared_ptr<TokenizerImpl> tokens, int64_t per_token, double dropout);

  // Posterior parameters per token: (B, G) -> mean (B, T, k), log-variance (B, T, k).
  std::pair<Tensor, Tensor> forward(const Tensor& log_expression);

  int64_t n_tokens() const { return tokens_->n_tokens(); }
  int64_t latent_dim() const { return n_tokens() * per_token_; }
  std::vector<std::string> token_names() const { return tokens_->token_names(); }
  // Per token, the norm of its projection weights at each gene (T, G); only
  // tokenizers with a linear gene path (gene sets) have them.
  Tensor weight_loadings() const { return tokens_->weight_loadings(); }

 private:
  int64_t per_token_;
  double dropout_;
  std::shared_ptr<TokenizerImpl> tokens_;
  torch::nn::LayerNorm norm_in_{nullptr}, norm_hidden_{nullptr};
  Linear hidden_{nullptr}, out_{nullptr};  // H -> H, H -> 2k
};
TORCH_MODULE(TokenEncoder);

}  // namespace exprflow
