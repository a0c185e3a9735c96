// Residual MLP backbone with FiLM conditioning (the "SimpleMLP" state-vector
// baseline of the seed design; CFGen's and scDiffusion's denoisers are of this
// kind). Each block:
//
//   h = LayerNorm(x) * (1 + scale(c)) + shift(c)     FiLM by time + condition
//   x = x + gate(c) * W2 Dropout(SiLU(W1 h))         gate zero-initialised
//
// Dropout matters here: on ~1,000 cells a wide state-vector MLP memorises the
// training cells within a few epochs (validation loss rising from epoch 2-7
// without it on the example data).
// Applied to every token independently (a state vector is one token). The
// FiLM layer starts at zero, so a fresh block is the identity, as in adaLN-Zero.
#pragma once

#include "backbone/backbone.hpp"
#include "backbone/dit_block.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class FilmBlockImpl : public torch::nn::Module {
 public:
  FilmBlockImpl(int64_t dim, double mlp_ratio, double dropout);
  Tensor forward(const Tensor& x, const Tensor& c);  // (B, T, D), (B, D) -> (B, T, D)

 private:
  torch::nn::LayerNorm norm_{nullptr};
  Linear in_{nullptr}, out_{nullptr};
  Linear film_{nullptr};  // D -> 3D (shift, scale, gate), zero-initialised
  double dropout_;
};
TORCH_MODULE(FilmBlock);

class ResidualMlpImpl : public BackboneImpl {
 public:
  ResidualMlpImpl(int64_t dim, int64_t n_layers, double mlp_ratio, double dropout = 0.0);
  Tensor forward(const Tensor& tokens, const Tensor& c) override;  // (B, T, D) -> (B, T, D)

 private:
  torch::nn::ModuleList blocks_{nullptr};
  FinalModulation final_{nullptr};
};
TORCH_MODULE(ResidualMlp);

}  // namespace exprflow
