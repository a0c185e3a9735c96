// Region encoders of the Siamese comparison models: one region's expression
// (B, G) -> one vector (B, D), by self-attention over tokens of that region.
//
// - ChunkEncoder: the genes, in the given order, cut into chunks of
//   chunk_size (the last one zero-padded); each chunk's expression vector ->
//   Linear -> a token, plus a learned chunk position; self-attention layers;
//   then either all tokens flattened -> Linear (pooled = false) or attention
//   pooling (pooled = true).
// - GeneTokenEncoder: one token per gene (binned expression + gene
//   embedding, as the cross-attention model), self-attention layers,
//   attention pooling.
#pragma once

#include "connectivity/attention_layer.hpp"
#include "connectivity/pair_network.hpp"
#include "exprflow/connectivity.hpp"
#include "exprflow/options.hpp"
#include "runtime/linear.hpp"
#include "tokenize/gene_tokens.hpp"

namespace exprflow {

class RegionEncoderImpl : public torch::nn::Module {
 public:
  // (B, G) -> (B, D). With weights_layer >= 0, *weights receives that layer's
  // head-averaged self-attention (B, T, T).
  virtual Tensor forward(const Tensor& x, int64_t weights_layer = -1, Tensor* weights = nullptr) = 0;
  virtual int64_t n_layers() const = 0;
  virtual double attention_size() const = 0;  // heads x tokens x tokens of one region
};

// Runs pre-norm self-attention layers, optionally capturing one layer's weights.
Tensor run_self_attention(torch::nn::ModuleList& layers, Tensor x, int64_t weights_layer, Tensor* weights);

class ChunkEncoderImpl : public RegionEncoderImpl {
 public:
  // spec keys: d_model, n_layers, n_heads, dropout, mlp_ratio, chunk_size.
  ChunkEncoderImpl(const Options& spec, int64_t n_genes, bool pooled);
  Tensor forward(const Tensor& x, int64_t weights_layer = -1, Tensor* weights = nullptr) override;
  int64_t n_layers() const override { return static_cast<int64_t>(layers_->size()); }
  int64_t n_chunks() const { return n_chunks_; }
  double attention_size() const override { return double(heads_) * n_chunks_ * n_chunks_; }

 private:
  int64_t n_genes_, chunk_size_, n_chunks_, d_model_, heads_;
  bool pooled_;
  Linear embed_{nullptr};  // chunk_size -> D, shared by the chunks
  Tensor positions_;                  // (n_chunks, D) learned chunk positions
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::LayerNorm final_norm_{nullptr};
  Linear flatten_{nullptr};  // n_chunks * D -> D (pooled = false)
  AttentionPooling pool_{nullptr};      // (pooled = true)
};
TORCH_MODULE(ChunkEncoder);

class GeneTokenEncoderImpl : public RegionEncoderImpl {
 public:
  // spec keys: d_model, n_layers, n_heads, dropout, mlp_ratio, n_bins,
  // learned_bins, bin_temperature.
  GeneTokenEncoderImpl(const Options& spec, const GeneEmbedding& genes);
  Tensor forward(const Tensor& x, int64_t weights_layer = -1, Tensor* weights = nullptr) override;
  int64_t n_layers() const override { return static_cast<int64_t>(layers_->size()); }
  double attention_size() const override {
    return double(heads_) * tokenizer_->n_genes() * tokenizer_->n_genes();
  }

 private:
  int64_t heads_;
  GeneTokenizer tokenizer_{nullptr};
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::LayerNorm final_norm_{nullptr};
  AttentionPooling pool_{nullptr};
};
TORCH_MODULE(GeneTokenEncoder);

}  // namespace exprflow
