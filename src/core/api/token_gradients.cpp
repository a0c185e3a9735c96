#include "api/token_gradients.hpp"

#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace exprflow {

Tensor mean_token_gradients(int n_cells, const std::function<Tensor(int, int)>& inputs,
                            const std::function<Tensor(const Tensor&)>& token_norms) {
  if (n_cells == 0) throw std::invalid_argument("gradient loadings need cells to average over");
  constexpr int kBatch = 256;
  Tensor total;  // (T, G)
  for (int lo = 0; lo < n_cells; lo += kBatch) {
    Tensor x = inputs(lo, std::min(n_cells, lo + kBatch)).detach().requires_grad_(true);  // (B, G)
    Tensor norms = token_norms(x);                                                         // (B, T)
    std::vector<Tensor> rows;
    for (int64_t k = 0; k < norms.size(1); ++k) {
      // Cells are independent, so the gradient of the sum is each cell's own.
      Tensor grad = torch::autograd::grad({norms.select(1, k).sum()}, {x}, /*grad_outputs=*/{},
                                          /*retain_graph=*/true)[0];  // (B, G)
      rows.push_back(grad.sum(0));                                     // (G,)
    }
    Tensor part = at::stack(rows);  // (T, G)
    total = total.defined() ? total + part : part;
  }
  return total / static_cast<double>(n_cells);
}

std::vector<float> token_loadings_by_method(const std::string& method, const ExpressionSource* data,
                                            const std::function<void(const ExpressionSource&)>& check_genes,
                                            const std::function<Tensor()>& weights,
                                            const std::function<Tensor(int, int)>& inputs,
                                            const std::function<Tensor(const Tensor&)>& token_norms, int* n_tokens) {
  Tensor loadings;  // (T, G)
  if (method == "weights") {
    loadings = weights();
  } else if (method == "gradient") {
    if (data == nullptr || data->n_cells() == 0) throw std::invalid_argument("gradient loadings need cells to average over");
    check_genes(*data);
    loadings = mean_token_gradients(data->n_cells(), inputs, token_norms);
  } else {
    throw std::invalid_argument("unknown loading method '" + method + "'; valid: 'weights', 'gradient'");
  }
  loadings = loadings.detach().to(at::kFloat).to(at::kCPU).contiguous();
  *n_tokens = static_cast<int>(loadings.size(0));
  return std::vector<float>(loadings.data_ptr<float>(), loadings.data_ptr<float>() + loadings.numel());
}

}  // namespace exprflow
