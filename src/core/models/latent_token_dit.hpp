// Latent-token DiT: latent-token encoder -> DiT blocks (adaLN-Zero, modulated
// by timestep + condition embeddings) -> final adaLN -> MLP decoder.
#pragma once

#include "backbone/dit_block.hpp"
#include "condition/categorical_condition.hpp"
#include "condition/timestep_embedding.hpp"
#include "decode/mlp_decoder.hpp"
#include "exprflow/options.hpp"
#include "models/denoising_network.hpp"
#include "tokenize/latent_tokens.hpp"

namespace exprflow {

class LatentTokenDiTImpl : public DenoisingNetworkImpl {
 public:
  // spec keys: n_tokens, token_dim, n_layers, n_heads, hidden, mlp_ratio.
  LatentTokenDiTImpl(const Options& spec, int64_t n_genes, int64_t n_levels);

  GeneOutput forward(const Tensor& x_t, const Tensor& t, const Tensor& condition) override;
  Tensor embed(const Tensor& x) override;  // mean of the encoder's content tokens
  int64_t null_condition() const override { return condition_->null_index(); }
  Tensor tokens(const Tensor& x) override { return encoder_->content(x); }  // (B, m, d)
  Tensor token_weight_loadings() override { return encoder_->weight_loadings(); }  // (m, G)

  // Read access for tests and interpretation.
  const torch::nn::ModuleList& blocks() const { return blocks_; }

 private:
  LatentTokenEncoder encoder_{nullptr};
  TimestepEmbedding time_{nullptr};
  CategoricalCondition condition_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  FinalModulation final_{nullptr};
  MlpDecoder decoder_{nullptr};
};

}  // namespace exprflow
