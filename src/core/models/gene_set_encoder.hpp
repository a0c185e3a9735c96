// The encoder of "latent_pathway" (seed "Hybrid approaches"): a count VAE
// whose latent tokens are tied to gene sets. Token t of the latent code is
// computed from the expression of token t's genes alone, so that its
// posterior is a reading of that pathway's activity in the cell:
//
//   x (B, G) log1p-normalised
//     -> PathwayTokens: token_t = sum_{g in set t} x_g w_{t,g} + b_t    (B, T, H)
//     -> per-token MLP, shared by the tokens (LayerNorm, SiLU, H -> H, SiLU)
//     -> H -> 2k: mean and log-variance of the token's k latent values  (B, T, 2k)
//
// The code is token-major: z[:, t*k : (t+1)*k] is token t, which is what the
// latent-split tokenizer of the flow cuts it into (one flow token per set).
// Genes in no set feed the residual token (gene_set_layout.hpp). The decoder
// is the VAE's ordinary MLP over the whole code: only the encoder is tied.
#pragma once

#include "tokenize/gene_set_layout.hpp"
#include "tokenize/pathway_tokens.hpp"

namespace exprflow {

class GeneSetEncoderImpl : public torch::nn::Module {
 public:
  // hidden: width H of each token's hidden vector; per_token: k latent values per token.
  GeneSetEncoderImpl(GeneSetLayout layout, int64_t hidden, int64_t per_token, double dropout);

  // Posterior parameters per token: (B, G) -> mean (B, T, k), log-variance (B, T, k).
  std::pair<Tensor, Tensor> forward(const Tensor& log_expression);

  int64_t n_tokens() const { return tokens_->n_tokens(); }
  int64_t latent_dim() const { return n_tokens() * per_token_; }
  std::vector<std::string> token_names() const { return tokens_->token_names(); }
  // Per token, the norm of its projection weights at each member gene. (T, G)
  Tensor weight_loadings() const { return tokens_->weight_loadings(); }

 private:
  int64_t per_token_;
  double dropout_;
  PathwayTokens tokens_{nullptr};
  torch::nn::LayerNorm norm_in_{nullptr}, norm_hidden_{nullptr};
  torch::nn::Linear hidden_{nullptr}, out_{nullptr};  // H -> H, H -> 2k
};
TORCH_MODULE(GeneSetEncoder);

}  // namespace exprflow
