// State-space-model backbone: a DiT-shaped stack whose attention is replaced
// by a bidirectional SSM sequence mixer, linear in the number of tokens.
//
// Each block, with adaLN-Zero modulation by time + condition c (one zero-
// initialised D -> 6D layer, so a fresh block is the identity):
//
//   h = modulate(LayerNorm(x), shift1(c), scale1(c))
//   x = x + gate1(c) * mixer(h)
//   h = modulate(LayerNorm(x), shift2(c), scale2(c))
//   x = x + gate2(c) * W2 Dropout(GELU(W1 h))
//
// The latent tokens have an order but no direction, so the mixer reads both:
// one SSM layer over the sequence plus a second one over the reversed
// sequence (reversed back), summed. layer selects the SSM:
//
//   "s4d"    diagonal S4 (backbone/s4d.hpp, init "lin" or "inv"); the two
//            depthwise layers are summed, then GELU and a position-wise
//            D -> 2D projection with GLU mix the channels, as in S4's block
//   "mamba"  selective SSM mixers (backbone/selective_scan.hpp, expand E/D),
//            each with its own projections (init is checked, not used)
//
// The stack ends with FinalModulation (adaLN + LayerNorm), as the DiT does.
#pragma once

#include <string>

#include "backbone/backbone.hpp"
#include "backbone/dit_block.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class SsmBlockImpl : public torch::nn::Module {
 public:
  SsmBlockImpl(int64_t dim, const std::string& layer, int64_t state_size, double mlp_ratio, double dropout,
               const std::string& init, int64_t expand);
  Tensor forward(const Tensor& x, const Tensor& c);  // (B, T, D), (B, D) -> (B, T, D)

 private:
  Tensor mix(const Tensor& h);  // (B, T, D) -> (B, T, D), bidirectional

  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::AnyModule forward_layer_, backward_layer_;  // S4d or MambaMixer: (B, T, D) -> (B, T, D)
  Linear s4d_out_{nullptr};                              // "s4d" only: D -> 2D, GLU
  Linear mlp_in_{nullptr}, mlp_out_{nullptr};
  Linear modulation_{nullptr};  // D -> 6D, zero-initialised
  double dropout_;
};
TORCH_MODULE(SsmBlock);

class SsmBackboneImpl : public BackboneImpl {
 public:
  // layer: "s4d" or "mamba"; state_size: SSM state entries per channel (even
  // for "s4d"); init: "lin" or "inv" (S4D initialisation); expand: the Mamba
  // mixer's inner width E = expand * dim.
  SsmBackboneImpl(int64_t dim, int64_t n_layers, const std::string& layer, int64_t state_size, double mlp_ratio,
                  double dropout, const std::string& init, int64_t expand = 2);
  Tensor forward(const Tensor& tokens, const Tensor& c) override;  // (B, T, D), (B, D) -> (B, T, D)

  const torch::nn::ModuleList& blocks() const { return blocks_; }

 private:
  torch::nn::ModuleList blocks_{nullptr};
  FinalModulation final_{nullptr};
};
TORCH_MODULE(SsmBackbone);

}  // namespace exprflow
