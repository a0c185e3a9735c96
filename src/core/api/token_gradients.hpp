// Gradient loadings of a model's gene-derived tokens, shared by the gene-space
// and latent models: for each token, d |token| / d x_g averaged over cells.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "data/expression_source.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// `inputs(lo, hi)`: the model's input of cells [lo, hi), (B, G);
// `token_norms(x)`: each cell's token norms, (B, G) -> (B, T), differentiable.
// Returns (T, G): the gradients of each token's norm, averaged over the n cells.
Tensor mean_token_gradients(int n_cells, const std::function<Tensor(int, int)>& inputs,
                            const std::function<Tensor(const Tensor&)>& token_norms);

// How a model's tokens load on genes, as token_loadings() returns them: the
// (T, G) loadings of `method`, row-major, with T in *n_tokens. "weights":
// `weights()`, the tokenizer's linear gene path; "gradient": the mean
// gradients over the cells of `data` (checked by `check_genes`, read by
// `inputs`). Errors name the method or the missing cells.
std::vector<float> token_loadings_by_method(const std::string& method, const ExpressionSource* data,
                                            const std::function<void(const ExpressionSource&)>& check_genes,
                                            const std::function<Tensor()>& weights,
                                            const std::function<Tensor(int, int)>& inputs,
                                            const std::function<Tensor(const Tensor&)>& token_norms, int* n_tokens);

}  // namespace exprflow
