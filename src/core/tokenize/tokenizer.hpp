// The tokenize stage's contract: a cell's state (its standardised expression
// vector, or later a latent code) -> the token sequence the backbone works on.
//
// content() is the part that describes the cell (no positional terms): what
// embeddings pool and what interpretation reads. Tokenizers whose tokens are
// tied to genes by a linear path expose it as weight_loadings().
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// A cell state's tokens, and where the tokens stand for genes that the state
// itself picks (rank tokens: a cell's strongest genes), the gene each token
// stands for in each cell: (B, T) int64, undefined for every other
// tokenizer. The decoder puts each token back on its gene with it rather than
// picking the genes a second time.
struct TokenizedState {
  Tensor tokens;       // (B, T, D)
  Tensor token_genes;  // (B, T) or undefined
};

class TokenizerImpl : public torch::nn::Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;  // (B, G) -> (B, T, D)
  virtual Tensor content(const Tensor& x) { return forward(x); }  // (B, G) -> (B, T, D)
  // What the network calls: forward()'s tokens, with the genes they stand for where the state picks them.
  virtual TokenizedState tokenize(const Tensor& x) { return {forward(x), Tensor()}; }
  // (T, G), unsigned; tokenizers without a linear gene path throw.
  virtual Tensor weight_loadings() const {
    throw std::invalid_argument("this tokenizer has no gene loadings");
  }
  // Whether the tokens stand for parts of the cell a user may interpret
  // (latent, pathway, ... tokens) rather than one state vector.
  virtual bool has_tokens() const { return true; }
  // Names of the tokens where they have them (gene sets); empty otherwise.
  virtual std::vector<std::string> token_names() const { return {}; }
  virtual int64_t n_tokens() const = 0;
  virtual int64_t token_dim() const = 0;
};

}  // namespace exprflow
