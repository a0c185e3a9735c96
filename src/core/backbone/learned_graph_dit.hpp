// DiT blocks whose attention among tokens follows a learned sparse graph (the
// "latent_grn" hybrid of the seed design: graph attention among latent tokens
// with a learned adjacency). Every ordered token pair (i <- j) has a learned
// logit; token i attends to itself and to the `degree` sources j with the
// highest logits, each source's attention weight scaled by sigmoid(logit)
// (an additive log-sigmoid score bias; the rest get -inf). The graph is
// re-chosen from the logits at every step, so an edge can enter when a kept
// one weakens; only kept edges get gradients. The same graph serves every
// block. With 8 latent tokens and degree 3, each token sees 4 of 8.
#pragma once

#include "backbone/backbone.hpp"
#include "backbone/dit_block.hpp"

namespace exprflow {

class LearnedGraphDiTImpl : public BackboneImpl {
 public:
  LearnedGraphDiTImpl(int64_t n_tokens, int64_t dim, int64_t n_layers, int64_t n_heads, double mlp_ratio,
                      int64_t degree);
  Tensor forward(const Tensor& tokens, const Tensor& c) override;  // (B, T, D) -> (B, T, D)

  // The additive score bias (T, T): log sigmoid(logit) on each token's
  // kept sources (itself included), -inf elsewhere.
  Tensor attention_bias() const;
  // The learned graph: sigmoid(logit) on kept edges, 0 elsewhere; row i
  // holds the weights of the sources token i attends to. (T, T)
  Tensor adjacency() const;

 private:
  int64_t n_tokens_, degree_;
  Tensor edge_logits_;  // (T, T), row = target, column = source
  torch::nn::ModuleList blocks_{nullptr};
  FinalModulation final_{nullptr};
};
TORCH_MODULE(LearnedGraphDiT);

}  // namespace exprflow
