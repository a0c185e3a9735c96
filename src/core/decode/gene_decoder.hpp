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
  // What the network calls: the tokens, the cell state x they were made
  // from, and the gene each token stands for where the state picked them
  // (TokenizedState::token_genes, (B, T), or undefined). Decoders of tokens
  // that stand for genes the state itself picks (rank tokens) read them,
  // picking from x where they are not given; the others ignore both.
  virtual GeneOutput decode(const Tensor& tokens, const Tensor& x, const Tensor& token_genes = Tensor()) {
    (void)x;
    (void)token_genes;
    return forward(tokens);  // (B, T, D) -> (B, G) [x 2]
  }
};

// Splits a (B, heads * G) output into GeneOutput.
GeneOutput split_heads(const Tensor& out, int64_t n_genes, int64_t heads);

}  // namespace exprflow
