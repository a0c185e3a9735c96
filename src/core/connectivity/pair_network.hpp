// The contract between a connectivity network and the model that trains it,
// plus the pieces every architecture shares: the MLP regression head and
// attention pooling.
//
// A network maps a batch of region pairs -- the two regions' expression and,
// when the data has them, their normalised coordinates -- to one scalar per
// pair. It knows nothing about training, files or the front end.
#pragma once

#include <string>
#include <vector>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

struct PairBatch {
  Tensor x_i, x_j;     // (B, G) expression in [0, 1] of regions i and j
  Tensor coords;       // (B, 6) normalised coordinates of i then j; undefined when the data has none
  // Optional: the region table the rows come from and the pairs' rows in it,
  // so that networks whose work is per region (Siamese encoders) do it once
  // per distinct region of the batch. Undefined: use x_i / x_j.
  Tensor expression;   // (R, G)
  Tensor i, j;         // (B,) int64
};

class PairNetworkImpl : public torch::nn::Module {
 public:
  virtual Tensor forward(const PairBatch& batch) = 0;  // -> (B,)
  // Head-averaged attention of layer `layer` (0-based) for the pairs of the
  // batch: (B, queries, keys).
  virtual Tensor attention_map(const PairBatch& batch, int64_t layer) = 0;
  virtual int64_t n_layers() const = 0;
  // Attention weights one pair needs in one layer (sum over heads, queries
  // and keys of every attention of the layer): bounds the pairs per pass.
  // 0 for a network without attention (no bound).
  virtual double attention_size_per_pair() const = 0;

  // Called once, before a model's first training, with the region table and
  // every training pair (`train.expression`, `train.i`, `train.j`; no x_i /
  // x_j) and their targets (P,): a network that standardises its inputs or
  // its output by the training data (the bilinear baseline) fixes those
  // statistics here, in buffers, so later inputs keep their meaning. The
  // attention networks take expression in [0, 1] as it is.
  virtual void fit_scaling(const PairBatch& train, const Tensor& target) {}

  // A term added to every training batch's mean squared error (a ridge
  // penalty on the weights), or undefined for none. Weight decay of the
  // optimiser is the attention networks' regulariser instead.
  virtual Tensor penalty() { return Tensor(); }
};

// "512,256,128" -> {512, 256, 128}; an empty string means no hidden layer.
std::vector<int64_t> parse_hidden_sizes(const std::string& text, const std::string& key);

// MLP regression head: Linear -> GELU -> Dropout per hidden size, then a
// Linear to one output. (B, in) -> (B,)
class MlpHeadImpl : public torch::nn::Module {
 public:
  MlpHeadImpl(int64_t in, const std::vector<int64_t>& hidden, double dropout);
  Tensor forward(const Tensor& x);

 private:
  double dropout_;
  torch::nn::ModuleList layers_{nullptr};
};
TORCH_MODULE(MlpHead);

// Attention pooling with one learned query: softmax_t(<x_t, q> / sqrt(D)) x_t.
// (B, T, D) -> (B, D)
class AttentionPoolingImpl : public torch::nn::Module {
 public:
  explicit AttentionPoolingImpl(int64_t dim);
  Tensor forward(const Tensor& x);
  Tensor weights(const Tensor& x);  // (B, T)

 private:
  Tensor query_;  // (D,)
};
TORCH_MODULE(AttentionPooling);

}  // namespace exprflow
