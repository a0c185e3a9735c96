// The backbone stage's contract: tokens + the time/condition vector -> tokens
// of the same shape, ready for the decoder (a backbone ends with its own final
// normalisation). The condition vector c has the tokens' width D.
#pragma once

#include <string>
#include <vector>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class BackboneImpl : public torch::nn::Module {
 public:
  virtual Tensor forward(const Tensor& tokens, const Tensor& c) = 0;  // (B, T, D), (B, D) -> (B, T, D)

  // How the condition reaches the backbone (the setting condition_path):
  // "adaln" in c (time + condition, the default); "cross_attention" or
  // "tokens": c carries the time alone and the condition comes as one token
  // per covariate through forward_conditioned().
  virtual std::string condition_path() const { return "adaln"; }
  // condition_tokens: (B, C, D).
  virtual Tensor forward_conditioned(const Tensor& tokens, const Tensor& c, const Tensor& condition_tokens) {
    return forward(tokens, c);
  }

  // A backbone that attends across the cells of a minibatch (cells as
  // tokens) says so; the network then hands it each cell's group (cells with
  // the same covariate codes) through forward_groups().
  virtual bool attends_across_cells() const { return false; }
  // groups: the row indices of each group (data/covariate_groups.hpp).
  virtual Tensor forward_groups(const Tensor& tokens, const Tensor& c,
                                const std::vector<std::vector<int64_t>>& groups) {
    return forward(tokens, c);
  }
};

}  // namespace exprflow
