// The cross-attention Gene2Vec connectivity model (seed design
// "CrossAttentionGene2VecModel").
//
// Region i's gene tokens, preceded by CLS token(s), are the queries; region
// j's gene tokens are the keys and values. After the layers the query side is
// pooled (mean of the gene tokens, a learned attention query, or the CLS
// token) and an MLP head maps it to the pair's connectivity. The model is
// directional: f(i, j) != f(j, i) in general. bidirectional = 1 also runs
// j -> i with the same layers and averages the two pooled vectors, which makes
// it symmetric.
//
// With pure cross-attention the queries never see each other: under "mean"
// or "attention" pooling the CLS tokens do not reach the output at all, and
// under "cls" pooling the output does not depend on region i's expression.
// query_self_attention = 1 (an extension; default 0 = the seed design) adds a
// self-attention step among the queries in every layer, which lets the CLS
// tokens and region i's genes exchange information.
//
// spec keys: d_model, n_layers, n_heads, dropout, mlp_ratio, head_hidden,
// n_bins, learned_bins, bin_temperature, cls ("random" | "spatial"), n_cls,
// alibi, bidirectional, query_self_attention, pooling ("mean" | "attention" |
// "cls"), seed.
#pragma once

#include "connectivity/attention_layer.hpp"
#include "connectivity/pair_network.hpp"
#include "exprflow/connectivity.hpp"
#include "exprflow/options.hpp"
#include "runtime/linear.hpp"
#include "tokenize/gene_tokens.hpp"

namespace exprflow {

class CrossAttentionNetworkImpl : public PairNetworkImpl {
 public:
  CrossAttentionNetworkImpl(const Options& spec, const GeneEmbedding& genes);

  Tensor forward(const PairBatch& batch) override;  // -> (B,)
  // Queries: the CLS tokens then the genes of i; keys: the genes of j (the
  // i -> j direction also when bidirectional). -> (B, n_cls + G, G)
  Tensor attention_map(const PairBatch& batch, int64_t layer) override;
  int64_t n_layers() const override { return static_cast<int64_t>(layers_->size()); }
  double attention_size_per_pair() const override;

  GeneTokenizer& tokenizer() { return tokenizer_; }

 private:
  // CLS tokens for queries of the first region in `coords` order: (B, n_cls, D).
  Tensor cls_tokens(int64_t batch, const Tensor& coords);
  // One direction: query tokens (B, G, D) attend to key tokens (B, G, D);
  // -> pooled (B, D). With weights_layer >= 0, *weights gets that layer's map.
  Tensor pooled(const Tensor& queries, const Tensor& keys, const Tensor& cls,
                int64_t weights_layer = -1, Tensor* weights = nullptr);
  Tensor bias(const at::Device& device);  // (H, n_cls + G, G) ALiBi, or undefined

  int64_t d_model_, n_cls_, heads_;
  std::string cls_mode_, pooling_;
  bool bidirectional_, alibi_, query_self_;
  GeneTokenizer tokenizer_{nullptr};
  Tensor cls_values_;   // (n_cls, 6) buffer: the fixed random CLS inputs ("random")
  Tensor cls_offsets_;  // (n_cls, D) parameter: tells spatial CLS tokens apart ("spatial")
  Linear cls_projection_{nullptr};  // 6 -> D
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::LayerNorm final_norm_{nullptr};
  AttentionPooling attention_pool_{nullptr};
  MlpHead head_{nullptr};
  Tensor bias_cache_;  // not a buffer: derived from the settings, never saved
};
TORCH_MODULE(CrossAttentionNetwork);

}  // namespace exprflow
