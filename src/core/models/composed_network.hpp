// A denoising network assembled from the stage tables:
//
//   x_t (B, G) -> tokenizer -> (B, T, D) -> backbone(tokens, time(t) + condition(c)) -> decoder -> (B, G) [x 2]
//
// With the setting input_skip = 1, the prediction also gets a gene-wise skip
// of the input scaled by the time/condition vector, value += (W c) * x_t (W
// zero-initialised), as EDM's c_skip: near t = 0 every objective's target is
// close to a multiple of x_t per gene, which a network whose width is below
// the number of genes cannot pass through itself.
// Which tokenizer, backbone and decoder is the composition's choice
// (models/compositions.hpp); the width D is the tokenizer's.
#pragma once

#include <vector>

#include "backbone/backbone.hpp"
#include "condition/condition_encoder.hpp"
#include "condition/timestep_embedding.hpp"
#include "decode/gene_decoder.hpp"
#include "exprflow/api.hpp"
#include "exprflow/options.hpp"
#include "models/denoising_network.hpp"
#include "runtime/linear.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

class ComposedNetworkImpl : public DenoisingNetworkImpl {
 public:
  // spec: a complete spec (see complete_spec()); heads: the objective's output_heads().
  ComposedNetworkImpl(const Options& spec, int64_t n_genes, std::vector<CovariateSpec> covariates, int64_t heads,
                      const Resources& resources = {});

  GeneOutput forward(const Tensor& x_t, const Tensor& t, const Covariates& covariates) override;
  // Token models: the mean of the tokenizer's content tokens. State-vector
  // models: the mean of the backbone's output on the clean cell (t = 0,
  // unconditional), the network's own features of the cell.
  Tensor embed(const Tensor& x) override;  // (B, G) -> (B, D)
  Tensor tokens(const Tensor& x) override;
  Tensor token_weight_loadings() override;
  std::vector<std::string> token_names() const override { return tokenizer_->token_names(); }

  TokenizerImpl& tokenizer() { return *tokenizer_; }
  BackboneImpl& backbone() { return *backbone_; }

 private:
  std::shared_ptr<TokenizerImpl> tokenizer_;
  TimestepEmbedding time_{nullptr};
  ConditionEncoder condition_{nullptr};
  std::shared_ptr<BackboneImpl> backbone_;
  std::shared_ptr<GeneDecoderImpl> decoder_;
  Linear skip_{nullptr};  // D -> G, zero-initialised; only with input_skip
};
TORCH_MODULE(ComposedNetwork);

}  // namespace exprflow
