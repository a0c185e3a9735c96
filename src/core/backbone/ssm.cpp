#include "backbone/ssm.hpp"

#include <stdexcept>

#include "backbone/s4d.hpp"
#include "backbone/selective_scan.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

namespace {

// Checked before any layer is built, so a bad name fails the same way for
// every depth (also n_layers = 0) and every layer kind.
void check_settings(const std::string& layer, const std::string& init, double mlp_ratio, double dropout) {
  if (layer != "s4d" && layer != "mamba") {
    throw std::invalid_argument("setting 'layer' must be one of \"s4d\", \"mamba\", got \"" + layer + "\"");
  }
  if (init != "lin" && init != "inv") {
    throw std::invalid_argument("setting 'init' must be one of \"lin\", \"inv\" (S4D initialisation), got \"" + init +
                                "\"");
  }
  if (!(mlp_ratio > 0)) throw std::invalid_argument("setting 'mlp_ratio' must be positive");
  if (dropout < 0 || dropout >= 1) throw std::invalid_argument("setting 'dropout' must be in [0, 1)");
}

torch::nn::LayerNorm affine_free_norm(int64_t dim) {
  // adaLN supplies the affine part, so the norm itself has none.
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).elementwise_affine(false).eps(1e-6));
}

}  // namespace

SsmBlockImpl::SsmBlockImpl(int64_t dim, const std::string& layer, int64_t state_size, double mlp_ratio, double dropout,
                           const std::string& init, int64_t expand)
    : dropout_(dropout) {
  check_settings(layer, init, mlp_ratio, dropout);
  norm1_ = register_module("norm1", affine_free_norm(dim));
  if (layer == "s4d") {
    forward_layer_ = torch::nn::AnyModule(S4d(dim, state_size, init));
    backward_layer_ = torch::nn::AnyModule(S4d(dim, state_size, init));
    s4d_out_ = register_module("s4d_out", Linear(dim, 2 * dim));
  } else {
    forward_layer_ = torch::nn::AnyModule(MambaMixer(dim, state_size, expand));
    backward_layer_ = torch::nn::AnyModule(MambaMixer(dim, state_size, expand));
  }
  register_module("forward_layer", forward_layer_.ptr());
  register_module("backward_layer", backward_layer_.ptr());

  norm2_ = register_module("norm2", affine_free_norm(dim));
  const int64_t hidden = static_cast<int64_t>(dim * mlp_ratio);
  mlp_in_ = register_module("mlp_in", Linear(dim, hidden));
  mlp_out_ = register_module("mlp_out", Linear(hidden, dim));

  modulation_ = register_module("modulation", Linear(dim, 6 * dim));
  torch::NoGradGuard no_grad;
  modulation_->weight.zero_();
  modulation_->bias.zero_();
}

Tensor SsmBlockImpl::mix(const Tensor& h) {
  Tensor from_past = forward_layer_.forward(h);                              // (B, T, D): token t sees tokens <= t
  Tensor from_future = backward_layer_.forward(h.flip(1)).flip(1);           // (B, T, D): token t sees tokens >= t
  if (!s4d_out_) return from_past + from_future;                             // Mamba mixers project on their own
  return at::glu(s4d_out_->forward(at::gelu(from_past + from_future)), -1);  // (B, T, D)
}

Tensor SsmBlockImpl::forward(const Tensor& x, const Tensor& c) {
  std::vector<Tensor> m = modulation_->forward(at::silu(c)).chunk(6, 1);  // 6 x (B, D)
  const Tensor &shift_mix = m[0], &scale_mix = m[1], &gate_mix = m[2];
  const Tensor &shift_mlp = m[3], &scale_mlp = m[4], &gate_mlp = m[5];

  Tensor h = mix(modulate(norm1_->forward(x), shift_mix, scale_mix));  // (B, T, D)
  Tensor out = x + gate_mix.unsqueeze(1) * h;
  h = modulate(norm2_->forward(out), shift_mlp, scale_mlp);
  h = mlp_out_->forward(at::dropout(at::gelu(mlp_in_->forward(h), "tanh"), dropout_, is_training()));  // (B, T, D)
  return out + gate_mlp.unsqueeze(1) * h;
}

SsmBackboneImpl::SsmBackboneImpl(int64_t dim, int64_t n_layers, const std::string& layer, int64_t state_size,
                                 double mlp_ratio, double dropout, const std::string& init, int64_t expand) {
  check_settings(layer, init, mlp_ratio, dropout);
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < n_layers; ++l) {
    blocks_->push_back(SsmBlock(dim, layer, state_size, mlp_ratio, dropout, init, expand));
  }
  final_ = register_module("final", FinalModulation(dim));
}

Tensor SsmBackboneImpl::forward(const Tensor& tokens, const Tensor& c) {
  Tensor x = tokens;  // (B, T, D)
  for (const auto& block : *blocks_) x = block->as<SsmBlock>()->forward(x, c);
  return final_->forward(x, c);  // (B, T, D)
}

}  // namespace exprflow
