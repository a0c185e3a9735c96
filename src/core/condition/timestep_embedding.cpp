#include "condition/timestep_embedding.hpp"
#include "runtime/linear.hpp"

#include <cmath>

namespace exprflow {

Tensor sinusoidal_features(const Tensor& t, int64_t dim, double max_period) {
  const int64_t half = dim / 2;
  auto opts = t.options().dtype(at::kFloat);
  Tensor freqs = at::exp(-std::log(max_period) * at::arange(half, opts) / half);  // (half,)
  Tensor args = t.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);             // (B, half)
  Tensor features = at::cat({at::cos(args), at::sin(args)}, 1);                   // (B, 2*half)
  if (dim % 2 == 1) features = at::cat({features, at::zeros({t.size(0), 1}, opts)}, 1);
  return features;  // (B, dim)
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t dim, int64_t frequency_dim)
    : frequency_dim_(frequency_dim) {
  in_ = register_module("linear_in", Linear(frequency_dim, dim));
  out_ = register_module("linear_out", Linear(dim, dim));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(in_->weight, 0.0, 0.02);
  torch::nn::init::normal_(out_->weight, 0.0, 0.02);
}

Tensor TimestepEmbeddingImpl::forward(const Tensor& t) {
  Tensor h = sinusoidal_features(t.to(at::kFloat) * kTimeScale, frequency_dim_);  // (B, F)
  return out_->forward(at::silu(in_->forward(h)));    // (B, dim)
}

}  // namespace exprflow
