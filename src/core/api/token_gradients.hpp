// Gradient loadings of a model's gene-derived tokens, shared by the gene-space
// and latent models: for each token, d |token| / d x_g averaged over cells.
#pragma once

#include <functional>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// `inputs(lo, hi)`: the model's input of cells [lo, hi), (B, G);
// `token_norms(x)`: each cell's token norms, (B, G) -> (B, T), differentiable.
// Returns (T, G): the gradients of each token's norm, averaged over the n cells.
Tensor mean_token_gradients(int n_cells, const std::function<Tensor(int, int)>& inputs,
                            const std::function<Tensor(const Tensor&)>& token_norms);

}  // namespace exprflow
