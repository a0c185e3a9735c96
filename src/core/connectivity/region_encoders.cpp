#include "connectivity/region_encoders.hpp"
#include "runtime/linear.hpp"

#include <stdexcept>
#include <string>

namespace exprflow {

namespace {

torch::nn::ModuleList self_attention_layers(const Options& spec) {
  torch::nn::ModuleList layers;
  const int64_t n = spec.positive("n_layers"), d = spec.positive("d_model"), h = spec.positive("n_heads");
  for (int64_t l = 0; l < n; ++l) {
    layers->push_back(AttentionLayer(d, h, spec.number("mlp_ratio"), spec.number("dropout"), /*cross=*/false));
  }
  return layers;
}

}  // namespace

Tensor run_self_attention(torch::nn::ModuleList& layers, Tensor x, int64_t weights_layer, Tensor* weights) {
  for (int64_t l = 0; l < static_cast<int64_t>(layers->size()); ++l) {
    x = layers[l]->as<AttentionLayer>()->forward(x, Tensor(), Tensor(), l == weights_layer ? weights : nullptr);
  }
  return x;  // (B, T, D)
}

ChunkEncoderImpl::ChunkEncoderImpl(const Options& spec, int64_t n_genes, bool pooled)
    : n_genes_(n_genes),
      chunk_size_(spec.positive("chunk_size")),
      n_chunks_((n_genes + chunk_size_ - 1) / chunk_size_),
      d_model_(spec.positive("d_model")),
      heads_(spec.positive("n_heads")),
      pooled_(pooled) {
  embed_ = register_module("embed", Linear(chunk_size_, d_model_));
  positions_ = register_parameter("positions", at::randn({n_chunks_, d_model_}) * 0.02);
  layers_ = register_module("layers", self_attention_layers(spec));
  final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model_})));
  if (pooled) {
    pool_ = register_module("pool", AttentionPooling(d_model_));
  } else {
    flatten_ = register_module("flatten", Linear(n_chunks_ * d_model_, d_model_));
  }
}

Tensor ChunkEncoderImpl::forward(const Tensor& x, int64_t weights_layer, Tensor* weights) {
  const int64_t B = x.size(0), padded = n_chunks_ * chunk_size_;
  Tensor xp = padded > n_genes_ ? at::constant_pad_nd(x, {0, padded - n_genes_}, 0.0) : x;  // (B, C * chunk)
  Tensor tokens = embed_->forward(xp.view({B, n_chunks_, chunk_size_})) + positions_;        // (B, C, D)
  tokens = final_norm_->forward(run_self_attention(layers_, tokens, weights_layer, weights)); // (B, C, D)
  if (pooled_) return pool_->forward(tokens);                                                 // (B, D)
  return flatten_->forward(tokens.reshape({B, n_chunks_ * d_model_}));                        // (B, D)
}

GeneTokenEncoderImpl::GeneTokenEncoderImpl(const Options& spec, const GeneEmbedding& genes)
    : heads_(spec.positive("n_heads")) {
  const int64_t d = spec.positive("d_model");
  tokenizer_ = register_module("tokenizer", GeneTokenizer(genes, d, spec.positive("n_bins"),
                                                          spec.flag("learned_bins", false),
                                                          spec.number("bin_temperature")));
  layers_ = register_module("layers", self_attention_layers(spec));
  final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  pool_ = register_module("pool", AttentionPooling(d));
}

Tensor GeneTokenEncoderImpl::forward(const Tensor& x, int64_t weights_layer, Tensor* weights) {
  Tensor tokens = run_self_attention(layers_, tokenizer_->forward(x), weights_layer, weights);  // (B, G, D)
  return pool_->forward(final_norm_->forward(tokens));                                          // (B, D)
}

}  // namespace exprflow
