#include "connectivity/bilinear_network.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <tuple>

namespace exprflow {

namespace {

// A spread usable as a divisor: a constant input (or a single value) has
// none, and is then left unscaled.
double usable_spread(double sd) { return std::isfinite(sd) && sd > 0 ? sd : 1.0; }

// Sample standard deviation (n - 1), as R's sd(); NaN for fewer than 2 values.
double sample_sd(const Tensor& values) {
  Tensor x = values.to(at::kDouble).flatten();  // (N,)
  const int64_t n = x.numel();
  if (n < 2) return NAN;
  return std::sqrt((x - x.mean()).pow(2).sum().item<double>() / static_cast<double>(n - 1));
}

}  // namespace

BilinearNetworkImpl::BilinearNetworkImpl(const Options& spec, int64_t n_genes)
    : rank_(spec.positive("rank")), lambda_(spec.number("lambda")), symmetric_(spec.flag("symmetric", true)) {
  if (!(lambda_ >= 0) || !std::isfinite(lambda_)) {
    throw std::invalid_argument("setting 'lambda' must be a finite number >= 0");
  }
  // Small random factors (sd 0.1 / sqrt(G)): the form starts near 0, i.e. at
  // the mean target, with gradients in every direction.
  const double scale = 0.1 / std::sqrt(static_cast<double>(n_genes));
  u_ = register_parameter("u", at::randn({n_genes, rank_}) * scale);
  v_ = register_parameter("v", at::randn({n_genes, rank_}) * scale);
  offset_ = register_parameter("offset", at::zeros({}));
  // Until fit_scaling(): the identity scaling.
  center_ = register_buffer("center", at::zeros({n_genes}));
  spread_ = register_buffer("spread", at::ones({}));
  target_mean_ = register_buffer("target_mean", at::zeros({}));
  target_sd_ = register_buffer("target_sd", at::ones({}));
}

Tensor BilinearNetworkImpl::standardise(const Tensor& x) const {
  return (x - center_) / spread_;  // (N, G)
}

Tensor BilinearNetworkImpl::forward(const PairBatch& batch) {
  Tensor a_i, b_i, a_j, b_j;  // (B, rank): z' U and z' V of the regions i and j
  if (batch.expression.defined()) {
    // Project each region of the table once (82 regions vs thousands of pairs), then gather.
    Tensor z = standardise(batch.expression);                     // (R, G)
    Tensor a = at::matmul(z, u_), b = at::matmul(z, v_);          // (R, rank)
    a_i = a.index_select(0, batch.i);
    b_i = b.index_select(0, batch.i);
    a_j = a.index_select(0, batch.j);
    b_j = b.index_select(0, batch.j);
  } else {
    Tensor z_i = standardise(batch.x_i), z_j = standardise(batch.x_j);  // (B, G)
    a_i = at::matmul(z_i, u_);
    b_i = at::matmul(z_i, v_);
    a_j = at::matmul(z_j, u_);
    b_j = at::matmul(z_j, v_);
  }
  Tensor form = (a_i * b_j).sum(1);                // (B,) z_i' U V' z_j
  if (symmetric_) form = form + (b_i * a_j).sum(1);  // (B,) + z_i' V U' z_j
  return target_mean_ + target_sd_ * (offset_ + form);  // (B,)
}

Tensor BilinearNetworkImpl::attention_map(const PairBatch&, int64_t) {
  throw std::invalid_argument("the bilinear baseline has no attention maps");
}

void BilinearNetworkImpl::fit_scaling(const PairBatch& train, const Tensor& target) {
  torch::NoGradGuard no_grad;
  // The regions of the training pairs: validation and test regions play no part.
  Tensor rows = std::get<0>(at::_unique(at::cat({train.i, train.j}), /*sorted=*/true));  // (U,)
  Tensor x = train.expression.index_select(0, rows).to(at::kDouble);                       // (U, G)
  Tensor center = x.mean(0);                                                               // (G,)
  center_.copy_(center);
  spread_.fill_(usable_spread(sample_sd(x - center)));
  target_mean_.fill_(target.to(at::kDouble).mean().item<double>());
  target_sd_.fill_(usable_spread(sample_sd(target)));
}

Tensor BilinearNetworkImpl::penalty() {
  // lambda (|U|^2 + |V|^2) on the standardised scale; the loss it joins is
  // the MSE of raw targets, s^2 times the standardised one.
  return (lambda_ * target_sd_.pow(2)) * (u_.pow(2).sum() + v_.pow(2).sum());  // ()
}

}  // namespace exprflow
