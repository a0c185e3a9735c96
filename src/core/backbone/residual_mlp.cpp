#include "backbone/residual_mlp.hpp"
#include "runtime/linear.hpp"

#include <stdexcept>

namespace exprflow {

FilmBlockImpl::FilmBlockImpl(int64_t dim, double mlp_ratio, double dropout) : dropout_(dropout) {
  if (dropout < 0 || dropout >= 1) throw std::invalid_argument("setting 'dropout' must be in [0, 1)");
  const int64_t hidden = static_cast<int64_t>(dim * mlp_ratio);
  norm_ = register_module("norm", torch::nn::LayerNorm(
                                      torch::nn::LayerNormOptions({dim}).elementwise_affine(false).eps(1e-6)));
  in_ = register_module("linear_in", Linear(dim, hidden));
  out_ = register_module("linear_out", Linear(hidden, dim));
  film_ = register_module("film", Linear(dim, 3 * dim));
  torch::NoGradGuard no_grad;
  film_->weight.zero_();
  film_->bias.zero_();
}

Tensor FilmBlockImpl::forward(const Tensor& x, const Tensor& c) {
  std::vector<Tensor> m = film_->forward(at::silu(c)).chunk(3, 1);  // 3 x (B, D)
  Tensor h = modulate(norm_->forward(x), m[0], m[1]);              // (B, T, D)
  h = out_->forward(at::dropout(at::silu(in_->forward(h)), dropout_, is_training()));  // (B, T, D)
  return x + m[2].unsqueeze(1) * h;
}

ResidualMlpImpl::ResidualMlpImpl(int64_t dim, int64_t n_layers, double mlp_ratio, double dropout) {
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < n_layers; ++l) blocks_->push_back(FilmBlock(dim, mlp_ratio, dropout));
  final_ = register_module("final", FinalModulation(dim));
}

Tensor ResidualMlpImpl::forward(const Tensor& tokens, const Tensor& c) {
  Tensor x = tokens;  // (B, T, D)
  for (const auto& block : *blocks_) x = block->as<FilmBlock>()->forward(x, c);
  return final_->forward(x, c);  // (B, T, D)
}

}  // namespace exprflow
