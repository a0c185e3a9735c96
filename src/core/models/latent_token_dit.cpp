#include "models/latent_token_dit.hpp"

#include <stdexcept>
#include <string>

namespace exprflow {

namespace {

void require_positive(const Options& spec, const char* key, bool allow_zero = false) {
  const double v = std::string(key) == "mlp_ratio" ? spec.number(key) : double(spec.integer(key));
  if (allow_zero ? v < 0 : v <= 0) {
    throw std::invalid_argument(std::string("setting '") + key + "' must be " +
                                (allow_zero ? "at least 0" : "positive") + ", got " + std::to_string(v));
  }
}

}  // namespace

LatentTokenDiTImpl::LatentTokenDiTImpl(const Options& spec, int64_t n_genes, int64_t n_levels) {
  for (const char* key : {"n_tokens", "token_dim", "n_heads", "hidden", "mlp_ratio"}) require_positive(spec, key);
  require_positive(spec, "n_layers", /*allow_zero=*/true);
  const int64_t m = spec.integer("n_tokens"), d = spec.integer("token_dim");
  const int64_t hidden = spec.integer("hidden");
  encoder_ = register_module("encoder", LatentTokenEncoder(n_genes, hidden, m, d));
  time_ = register_module("time", TimestepEmbedding(d));
  condition_ = register_module("condition", CategoricalCondition(n_levels, d));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (long l = 0; l < spec.integer("n_layers"); ++l) {
    blocks_->push_back(DiTBlock(d, spec.integer("n_heads"), spec.number("mlp_ratio")));
  }
  final_ = register_module("final", FinalModulation(d));
  decoder_ = register_module("decoder", MlpDecoder(m * d, hidden, n_genes));
}

GeneOutput LatentTokenDiTImpl::forward(const Tensor& x_t, const Tensor& t, const Tensor& condition) {
  Tensor tokens = encoder_->forward(x_t);                       // (B, m, d)
  Tensor c = time_->forward(t) + condition_->forward(condition);  // (B, d)
  for (const auto& block : *blocks_) tokens = block->as<DiTBlock>()->forward(tokens, c);
  return decoder_->forward(final_->forward(tokens, c));  // 2 x (B, G)
}

Tensor LatentTokenDiTImpl::embed(const Tensor& x) {
  return encoder_->content(x).mean(1);  // (B, d)
}

}  // namespace exprflow
