#include "connectivity/cross_attention_network.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "backbone/alibi.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

CrossAttentionNetworkImpl::CrossAttentionNetworkImpl(const Options& spec, const GeneEmbedding& genes)
    : d_model_(spec.positive("d_model")),
      n_cls_(spec.positive("n_cls")),
      heads_(spec.positive("n_heads")),
      cls_mode_(spec.text("cls")),
      pooling_(spec.text("pooling")),
      bidirectional_(spec.flag("bidirectional", false)),
      alibi_(spec.flag("alibi", false)),
      query_self_(spec.flag("query_self_attention", false)) {
  if (cls_mode_ != "random" && cls_mode_ != "spatial") {
    throw std::invalid_argument("setting 'cls' must be 'random' or 'spatial', got '" + cls_mode_ + "'");
  }
  if (pooling_ != "mean" && pooling_ != "attention" && pooling_ != "cls") {
    throw std::invalid_argument("setting 'pooling' must be 'mean', 'attention' or 'cls', got '" + pooling_ + "'");
  }
  const int64_t layers = spec.positive("n_layers");
  const double dropout = spec.number("dropout"), mlp_ratio = spec.number("mlp_ratio");
  tokenizer_ = register_module("tokenizer", GeneTokenizer(genes, d_model_, spec.positive("n_bins"),
                                                          spec.flag("learned_bins", false),
                                                          spec.number("bin_temperature")));
  cls_projection_ = register_module("cls_projection", Linear(6, d_model_));
  if (cls_mode_ == "random") {
    // Drawn once from the model's seed: the same values in a model, its EMA
    // copy and a reloaded model (they are also saved as a buffer).
    at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(spec.integer("seed")) + 104729);
    cls_values_ = register_buffer("cls_values", at::randn({n_cls_, 6}, generator));  // (n_cls, 6)
  } else {
    cls_offsets_ = register_parameter("cls_offsets", at::randn({n_cls_, d_model_}) * 0.02);  // (n_cls, D)
  }
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < layers; ++l) {
    layers_->push_back(AttentionLayer(d_model_, heads_, mlp_ratio, dropout, /*cross=*/true,
                                      query_self_));
  }
  final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model_})));
  if (pooling_ == "attention") attention_pool_ = register_module("attention_pool", AttentionPooling(d_model_));
  head_ = register_module("head", MlpHead(d_model_, parse_hidden_sizes(spec.text("head_hidden"), "head_hidden"),
                                          dropout));
}

double CrossAttentionNetworkImpl::attention_size_per_pair() const {
  const double G = static_cast<double>(tokenizer_->n_genes()), T = n_cls_ + G;
  const double one_way = heads_ * (T * G + (query_self_ ? T * T : 0.0));
  return bidirectional_ ? 2 * one_way : one_way;
}

Tensor CrossAttentionNetworkImpl::bias(const at::Device& device) {
  if (!alibi_) return Tensor();
  if (!bias_cache_.defined() || bias_cache_.device() != device) {
    const int64_t G = tokenizer_->n_genes();
    // CLS queries have no position (NaN); gene g sits at position g of the given gene order.
    Tensor q_pos = at::cat({at::full({n_cls_}, std::numeric_limits<float>::quiet_NaN()),
                            at::arange(G, at::TensorOptions().dtype(at::kFloat))});  // (n_cls + G,)
    Tensor k_pos = at::arange(G, at::TensorOptions().dtype(at::kFloat));               // (G,)
    bias_cache_ = alibi_bias(heads_, q_pos, k_pos).to(device);                          // (H, n_cls + G, G)
  }
  return bias_cache_;
}

Tensor CrossAttentionNetworkImpl::cls_tokens(int64_t batch, const Tensor& coords) {
  if (cls_mode_ == "random") {
    return cls_projection_->forward(cls_values_).unsqueeze(0).expand({batch, n_cls_, d_model_});  // (B, n_cls, D)
  }
  if (!coords.defined()) {
    throw std::invalid_argument("cls = 'spatial' needs region coordinates, but none were given");
  }
  return cls_projection_->forward(coords).unsqueeze(1) + cls_offsets_.unsqueeze(0);  // (B, n_cls, D)
}

Tensor CrossAttentionNetworkImpl::pooled(const Tensor& queries, const Tensor& keys, const Tensor& cls,
                                         int64_t weights_layer, Tensor* weights) {
  Tensor x = at::cat({cls, queries}, 1);  // (B, n_cls + G, D)
  Tensor b = bias(x.device());            // (H, n_cls + G, G) or undefined
  for (int64_t l = 0; l < n_layers(); ++l) {
    x = layers_[l]->as<AttentionLayer>()->forward(x, keys, b, l == weights_layer ? weights : nullptr);
  }
  x = final_norm_->forward(x);  // (B, n_cls + G, D)
  if (pooling_ == "cls") return x.slice(1, 0, n_cls_).mean(1);  // (B, D)
  Tensor genes = x.slice(1, n_cls_);                             // (B, G, D)
  if (pooling_ == "attention") return attention_pool_->forward(genes);  // (B, D)
  return genes.mean(1);  // (B, D)
}

Tensor CrossAttentionNetworkImpl::forward(const PairBatch& batch) {
  const int64_t B = batch.x_i.size(0);
  Tensor t_i = tokenizer_->forward(batch.x_i), t_j = tokenizer_->forward(batch.x_j);  // (B, G, D) each
  Tensor p = pooled(t_i, t_j, cls_tokens(B, batch.coords));  // (B, D)
  if (bidirectional_) {
    // j -> i sees the coordinates in its own order (j, i): the reverse pair's
    // forward direction exactly, hence f(i, j) = f(j, i).
    Tensor swapped = batch.coords.defined()
                         ? at::cat({batch.coords.slice(1, 3, 6), batch.coords.slice(1, 0, 3)}, 1)  // (B, 6)
                         : Tensor();
    p = 0.5 * (p + pooled(t_j, t_i, cls_tokens(B, swapped)));  // (B, D)
  }
  return head_->forward(p);  // (B,)
}

Tensor CrossAttentionNetworkImpl::attention_map(const PairBatch& batch, int64_t layer) {
  const int64_t B = batch.x_i.size(0);
  Tensor t_i = tokenizer_->forward(batch.x_i), t_j = tokenizer_->forward(batch.x_j);  // (B, G, D)
  Tensor weights;
  pooled(t_i, t_j, cls_tokens(B, batch.coords), layer, &weights);
  return weights;  // (B, n_cls + G, G)
}

}  // namespace exprflow
