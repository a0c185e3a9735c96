// The state-vector "tokenizer" (seed design Option A): no tokens, the whole
// expression vector projected to one vector of width `hidden`, which a
// residual MLP backbone then transforms. Shaped as one token (B, 1, D) so it
// composes with every backbone and decoder.
#pragma once

#include "runtime/linear.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

class StateVectorImpl : public TokenizerImpl {
 public:
  StateVectorImpl(int64_t n_genes, int64_t hidden);

  Tensor forward(const Tensor& x) override;  // (B, G) -> (B, 1, D)
  bool has_tokens() const override { return false; }
  int64_t n_tokens() const override { return 1; }
  int64_t token_dim() const override { return hidden_; }

 private:
  int64_t hidden_;
  Linear in_{nullptr};
};
TORCH_MODULE(StateVector);

}  // namespace exprflow
