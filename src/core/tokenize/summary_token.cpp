#include "tokenize/summary_token.hpp"

namespace exprflow {

Linear register_summary_token(torch::nn::Module& tokenizer, int64_t n_genes, int64_t token_dim) {
  return tokenizer.register_module("summary", Linear(n_genes, token_dim));
}

Tensor append_summary_token(const Tensor& tokens, Linear& summary, const Tensor& x) {
  if (!summary) return tokens;
  return at::cat({tokens, summary->forward(x).unsqueeze(1)}, 1);  // (B, T + 1, D)
}

}  // namespace exprflow
