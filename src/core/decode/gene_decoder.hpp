// The decode stage's contract for generative networks: tokens -> gene space.
//
// The first output is the network's prediction (noise, velocity or clean
// expression: the objective's business). A decoder built with two heads adds
// a per-gene `scale`, which the DDPM objective uses as the learned reverse
// variance; with one head `scale` is undefined.
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

struct GeneOutput {
  Tensor value;  // (B, G)
  Tensor scale;  // (B, G) or undefined
};

class GeneDecoderImpl : public torch::nn::Module {
 public:
  virtual GeneOutput forward(const Tensor& tokens) = 0;  // (B, T, D) -> (B, G) [x 2]
  // What the network calls: the tokens and the cell state x they were made
  // from. Decoders whose tokens stand for genes the state itself picks (rank
  // tokens) read x; the others ignore it.
  virtual GeneOutput decode(const Tensor& tokens, const Tensor& x) {  // (B, T, D), (B, G) -> (B, G) [x 2]
    (void)x;
    return forward(tokens);
  }
};

// Splits a (B, heads * G) output into GeneOutput.
GeneOutput split_heads(const Tensor& out, int64_t n_genes, int64_t heads);

}  // namespace exprflow
