#include "backbone/dit_block.hpp"
#include "runtime/linear.hpp"

#include <stdexcept>

namespace exprflow {

namespace {

torch::nn::LayerNorm affine_free_norm(int64_t dim) {
  // adaLN supplies the affine part, so the norm itself has none.
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({dim}).elementwise_affine(false).eps(1e-6));
}

Linear zero_linear(int64_t in, int64_t out) {
  Linear layer(in, out);
  torch::NoGradGuard no_grad;
  layer->weight.zero_();
  layer->bias.zero_();
  return layer;
}

// (B, D) modulation broadcast over the tokens; (B, T, D) is already per token.
Tensor per_token(const Tensor& m) { return m.dim() == 2 ? m.unsqueeze(1) : m; }

}  // namespace

Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
  return x * (1 + per_token(scale)) + per_token(shift);  // (B, T, D)
}

DiTBlockImpl::DiTBlockImpl(int64_t dim, int64_t heads, double mlp_ratio, std::shared_ptr<EdgeIndex> graph,
                           bool cross_attention) {
  const int64_t hidden = static_cast<int64_t>(dim * mlp_ratio);
  norm1_ = register_module("norm1", affine_free_norm(dim));
  attention_ = register_module("attention", SelfAttention(dim, heads, std::move(graph)));
  if (cross_attention) cross_ = register_module("cross_attention", ConditionAttention(dim, heads));
  norm2_ = register_module("norm2", affine_free_norm(dim));
  mlp_in_ = register_module("mlp_in", Linear(dim, hidden));
  mlp_out_ = register_module("mlp_out", Linear(hidden, dim));
  modulation_ = register_module("modulation", zero_linear(dim, 6 * dim));
}

Tensor DiTBlockImpl::forward(const Tensor& x, const Tensor& c, const Tensor& bias, const Tensor& condition_tokens) {
  std::vector<Tensor> m = modulation_->forward(at::silu(c)).chunk(6, -1);  // 6 x (B, [T,] D)
  const Tensor &shift_attn = m[0], &scale_attn = m[1], &gate_attn = m[2];
  const Tensor &shift_mlp = m[3], &scale_mlp = m[4], &gate_mlp = m[5];

  Tensor h = attention_->forward(modulate(norm1_->forward(x), shift_attn, scale_attn), bias);  // (B, T, D)
  Tensor out = x + per_token(gate_attn) * h;
  if (cross_) {
    if (!condition_tokens.defined()) throw std::invalid_argument("a DiT block with cross-attention needs condition tokens");
    out = out + cross_->forward(out, condition_tokens);  // (B, T, D)
  }
  h = modulate(norm2_->forward(out), shift_mlp, scale_mlp);
  h = mlp_out_->forward(at::gelu(mlp_in_->forward(h), "tanh"));  // (B, T, D)
  return out + per_token(gate_mlp) * h;
}

FinalModulationImpl::FinalModulationImpl(int64_t dim) {
  norm_ = register_module("norm", affine_free_norm(dim));
  modulation_ = register_module("modulation", zero_linear(dim, 2 * dim));
}

Tensor FinalModulationImpl::forward(const Tensor& x, const Tensor& c) {
  std::vector<Tensor> m = modulation_->forward(at::silu(c)).chunk(2, -1);  // 2 x (B, [T,] D)
  return modulate(norm_->forward(x), m[0], m[1]);                        // (B, T, D)
}

}  // namespace exprflow
