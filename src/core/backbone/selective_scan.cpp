#include "backbone/selective_scan.hpp"
#include "runtime/linear.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace exprflow {

void check_selective_scan_shapes(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                 const Tensor& C, const Tensor& D) {
  const bool ok = u.dim() == 3 && delta.sizes() == u.sizes() && A.dim() == 2 && A.size(0) == u.size(2) &&
                  B.dim() == 3 && B.size(0) == u.size(0) && B.size(1) == u.size(1) && B.size(2) == A.size(1) &&
                  C.sizes() == B.sizes() && D.dim() == 1 && D.size(0) == u.size(2);
  if (!ok) {
    std::ostringstream msg;
    msg << "selective_scan: expected u, delta (B, L, E), A (E, N), B, C (B, L, N), D (E); got u " << u.sizes()
        << ", delta " << delta.sizes() << ", A " << A.sizes() << ", B " << B.sizes() << ", C " << C.sizes() << ", D "
        << D.sizes();
    throw std::invalid_argument(msg.str());
  }
}

Tensor selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      const Tensor& D, int64_t chunk) {
  if (chunk < 1) throw std::invalid_argument("selective_scan: chunk length must be >= 1, got " + std::to_string(chunk));
  if (selective_scan_fused_cpu_applies(u, delta, A, B, C, D)) return selective_scan_fused_cpu(u, delta, A, B, C, D);
  if (selective_scan_fused_cuda_applies(u, delta, A, B, C, D)) return selective_scan_fused_cuda(u, delta, A, B, C, D);
  return selective_scan_chunked(u, delta, A, B, C, D, chunk);
}

Tensor selective_scan_chunked(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                              const Tensor& D, int64_t chunk) {
  check_selective_scan_shapes(u, delta, A, B, C, D);
  if (chunk < 1) throw std::invalid_argument("selective_scan: chunk length must be >= 1, got " + std::to_string(chunk));

  // Time first: a chunk is a contiguous block, and every elementwise op runs
  // over the long (B, E, N) rows. Split once: a split's backward is a single
  // cat, where a narrow() per chunk would allocate a full-length gradient each.
  std::vector<Tensor> log_decays =
      (delta.unsqueeze(-1) * A).transpose(0, 1).contiguous().split(chunk);  // (Lc, B, E, N), <= 0
  std::vector<Tensor> inputs =
      ((delta * u).unsqueeze(-1) * B.unsqueeze(2)).transpose(0, 1).contiguous().split(chunk);  // (Lc, B, E, N)
  std::vector<Tensor> readouts = C.unsqueeze(2).transpose(0, 1).split(chunk);                  // (Lc, B, 1, N)

  Tensor h = at::zeros({u.size(0), u.size(2), A.size(1)}, u.options());  // (B, E, N): state at the chunk start
  std::vector<Tensor> ys;
  for (size_t i = 0; i < log_decays.size(); ++i) {
    const int64_t len = log_decays[i].size(0);
    Tensor S = log_decays[i].cumsum(0);  // (Lc, B, E, N)
    Tensor future = at::ones({len, len}, u.options().dtype(at::kBool)).triu(1);  // (Lc, Lc): [t, s] = s > t
    Tensor weights = (S.unsqueeze(1) - S.unsqueeze(0))                           // (Lc, Lc, B, E, N): S_t - S_s
                         .masked_fill(future.view({len, len, 1, 1, 1}), -std::numeric_limits<double>::infinity())
                         .exp();
    Tensor states = (weights * inputs[i].unsqueeze(0)).sum(1) + S.exp() * h;  // (Lc, B, E, N)
    ys.push_back((states * readouts[i]).sum(-1));                             // (Lc, B, E)
    h = states[len - 1];                                                      // (B, E, N)
  }
  return at::cat(ys).transpose(0, 1) + u * D;  // (B, L, E)
}

Tensor selective_scan_reference(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                                const Tensor& D) {
  check_selective_scan_shapes(u, delta, A, B, C, D);
  std::vector<Tensor> us = u.unbind(1), deltas = delta.unbind(1), Bs = B.unbind(1), Cs = C.unbind(1);
  Tensor h = at::zeros({u.size(0), u.size(2), A.size(1)}, u.options());  // (B, E, N)
  std::vector<Tensor> ys;
  for (size_t t = 0; t < us.size(); ++t) {
    h = (deltas[t].unsqueeze(-1) * A).exp() * h + (deltas[t] * us[t]).unsqueeze(-1) * Bs[t].unsqueeze(1);  // (B, E, N)
    ys.push_back((h * Cs[t].unsqueeze(1)).sum(-1) + D * us[t]);                                            // (B, E)
  }
  return at::stack(ys, 1);  // (B, L, E)
}

MambaMixerImpl::MambaMixerImpl(int64_t dim, int64_t state_size, int64_t expand, int64_t conv_kernel, int64_t chunk,
                               double dt_min, double dt_max)
    : inner_(expand * dim), state_size_(state_size), dt_rank_((dim + 15) / 16), chunk_(chunk) {
  if (dim < 1) throw std::invalid_argument("Mamba mixer: dim must be positive");
  if (state_size < 1) {
    throw std::invalid_argument("setting 'state_size' must be >= 1 for the mamba layer, got " +
                                std::to_string(state_size));
  }
  if (expand < 1) throw std::invalid_argument("setting 'expand' must be >= 1, got " + std::to_string(expand));
  if (conv_kernel < 1) throw std::invalid_argument("Mamba mixer: conv_kernel must be >= 1");
  if (chunk < 1) throw std::invalid_argument("Mamba mixer: chunk must be >= 1");
  if (!(dt_min > 0 && dt_min <= dt_max)) throw std::invalid_argument("Mamba mixer: need 0 < dt_min <= dt_max");

  in_proj_ = register_module("in_proj", Linear(torch::nn::LinearOptions(dim, 2 * inner_).bias(false)));
  // PyTorch's Conv1d default initialisation: uniform in +-1/sqrt(fan_in), fan_in = K (depthwise).
  const double bound = 1.0 / std::sqrt(static_cast<double>(conv_kernel));
  conv_weight_ = register_parameter("conv_weight", at::empty({inner_, 1, conv_kernel}).uniform_(-bound, bound));
  conv_bias_ = register_parameter("conv_bias", at::empty({inner_}).uniform_(-bound, bound));
  x_proj_ = register_module("x_proj",
                            Linear(torch::nn::LinearOptions(inner_, dt_rank_ + 2 * state_size).bias(false)));
  dt_proj_ = register_module("dt_proj", Linear(dt_rank_, inner_));
  A_log_ = register_parameter(
      "A_log", at::arange(1, state_size + 1, at::kFloat).log().unsqueeze(0).repeat({inner_, 1}));  // (E, N)
  D_ = register_parameter("D", at::ones({inner_}));
  out_proj_ = register_module("out_proj", Linear(torch::nn::LinearOptions(inner_, dim).bias(false)));

  torch::NoGradGuard no_grad;
  // Mamba's step-size initialisation: delta = softplus(dt_proj(.)) starts
  // log-uniform in [dt_min, dt_max] through the bias (the inverse softplus of
  // the sampled step), with a weight scaled to the low rank.
  const double dt_bound = 1.0 / std::sqrt(static_cast<double>(dt_rank_));
  dt_proj_->weight.uniform_(-dt_bound, dt_bound);
  Tensor dt = (at::rand({inner_}) * (std::log(dt_max) - std::log(dt_min)) + std::log(dt_min)).exp();
  dt_proj_->bias.copy_(dt + at::log(-at::expm1(-dt)));
}

Tensor MambaMixerImpl::forward(const Tensor& input) {
  const int64_t L = input.size(1);
  std::vector<Tensor> xz = in_proj_->forward(input).chunk(2, -1);  // 2 x (B, L, E)
  // Causal depthwise convolution: pad K - 1 on both sides, keep the first L outputs.
  const int64_t K = conv_weight_.size(-1);
  Tensor x = at::conv1d(xz[0].transpose(1, 2), conv_weight_, conv_bias_, /*stride=*/1, /*padding=*/K - 1,
                        /*dilation=*/1, /*groups=*/inner_)
                 .narrow(-1, 0, L)
                 .transpose(1, 2);  // (B, L, E)
  x = at::silu(x);

  std::vector<Tensor> parts = x_proj_->forward(x).split_with_sizes({dt_rank_, state_size_, state_size_}, -1);
  Tensor delta = at::softplus(dt_proj_->forward(parts[0]));                // (B, L, E), > 0
  Tensor A = -A_log_.exp();                                                // (E, N), < 0
  Tensor y = selective_scan(x, delta, A, parts[1], parts[2], D_, chunk_);  // (B, L, E)
  return out_proj_->forward(y * at::silu(xz[1]));                          // (B, L, D)
}

}  // namespace exprflow
