// The backbone stage's contract: tokens + the time/condition vector -> tokens
// of the same shape, ready for the decoder (a backbone ends with its own final
// normalisation). The condition vector c has the tokens' width D.
#pragma once

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class BackboneImpl : public torch::nn::Module {
 public:
  virtual Tensor forward(const Tensor& tokens, const Tensor& c) = 0;  // (B, T, D), (B, D) -> (B, T, D)
};

}  // namespace exprflow
