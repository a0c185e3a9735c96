#include "decode/nb_log_prob.hpp"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/launchers.hpp"
#include "runtime/cuda_stream.hpp"

namespace exprflow {

namespace {

// lgamma(z) - [(z - 1/2) log z - z + log(2 pi) / 2] for z >= kStirlingTheta
// (truncated series; off by < 1/(1680 z^7) < 1e-10 there).
Tensor stirling_correction(const Tensor& z) {
  const Tensor r = z.reciprocal();
  const Tensor r2 = r * r;
  return r * (1.0 / 12 - r2 * (1.0 / 360 - r2 / 1260));
}

// lgamma(x + 1): a table for the small integer counts that make up most of a
// count matrix, std::lgamma for the rest.
double lgamma_x_plus_1(double x) {
  constexpr int kTable = 1024;
  static const std::array<double, kTable> table = [] {
    std::array<double, kTable> t{};
    for (int i = 0; i < kTable; ++i) t[i] = std::lgamma(i + 1.0);
    return t;
  }();
  const int i = static_cast<int>(x);
  return (i == x && i >= 0 && i < kTable) ? table[i] : std::lgamma(x + 1);
}

template <typename scalar_t>
void fused_pass(const Tensor& x, const Tensor& mu, const Tensor& theta, Tensor& out, Tensor* d_mu, Tensor* d_theta) {
  const int64_t B = x.size(0), G = x.size(1);
  const scalar_t* xp = x.data_ptr<scalar_t>();
  const scalar_t* mp = mu.data_ptr<scalar_t>();
  const scalar_t* tp = theta.data_ptr<scalar_t>();
  const int64_t theta_row_stride = theta.size(0) == 1 ? 0 : G;  // theta is (1, G) or (B, G), contiguous
  scalar_t* op = out.data_ptr<scalar_t>();
  scalar_t* dmp = d_mu ? d_mu->data_ptr<scalar_t>() : nullptr;
  scalar_t* dtp = d_theta ? d_theta->data_ptr<scalar_t>() : nullptr;
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      for (int64_t g = 0; g < G; ++g) {
        const int64_t i = b * G + g;
        const double xi = xp[i];
        const nb::Term t = nb::term(xi, mp[i], tp[b * theta_row_stride + g], lgamma_x_plus_1(xi));
        op[i] = static_cast<scalar_t>(t.log_prob);
        if (dmp) dmp[i] = static_cast<scalar_t>(t.d_mu);
        if (dtp) dtp[i] = static_cast<scalar_t>(t.d_theta);
      }
    }
  });
}

// The same pass on the GPU (kernels/cuda/nb_log_prob.cu).
template <typename scalar_t>
void fused_pass_cuda(const Tensor& x, const Tensor& mu, const Tensor& theta, Tensor& out, Tensor* d_mu,
                     Tensor* d_theta) {
  cuda::nb_log_prob<scalar_t>(x.data_ptr<scalar_t>(), mu.data_ptr<scalar_t>(), theta.data_ptr<scalar_t>(), x.size(0),
                              x.size(1), theta.size(0) == 1 ? 0 : x.size(1), out.data_ptr<scalar_t>(),
                              d_mu ? d_mu->data_ptr<scalar_t>() : nullptr,
                              d_theta ? d_theta->data_ptr<scalar_t>() : nullptr, current_cuda_stream(x));
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct FusedNbLogProb : public torch::autograd::Function<FusedNbLogProb> {
  // grad_mu / grad_theta: whether backward will want them (decided outside, where grad mode is known).
  static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& mu_in, const Tensor& theta_in,
                        bool grad_mu, bool grad_theta) {
    const int64_t B = x_in.size(0), G = x_in.size(1);
    const Tensor x = x_in.contiguous(), mu = mu_in.contiguous();
    // (1, G) or (B, G), contiguous: a per-gene theta is not copied per row.
    const Tensor theta = (theta_in.dim() == 1 ? theta_in.view({1, G}) : theta_in).contiguous();
    Tensor out = at::empty({B, G}, x.options());  // (B, G)
    Tensor d_mu = grad_mu ? at::empty({B, G}, x.options()) : Tensor();        // (B, G)
    Tensor d_theta = grad_theta ? at::empty({B, G}, x.options()) : Tensor();  // (B, G), summed to theta's shape in backward
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "nb_log_prob_fused", [&] {
      if (x.is_cuda()) {
        fused_pass_cuda<scalar_t>(x, mu, theta, out, grad_mu ? &d_mu : nullptr, grad_theta ? &d_theta : nullptr);
      } else {
        fused_pass<scalar_t>(x, mu, theta, out, grad_mu ? &d_mu : nullptr, grad_theta ? &d_theta : nullptr);
      }
    });
    ctx->save_for_backward({d_mu, d_theta});
    ctx->saved_data["theta_sizes"] = theta_in.sizes();
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& grad = grads[0];  // (B, G)
    Tensor d_mu = saved[0].defined() ? grad * saved[0] : Tensor();
    Tensor d_theta;
    if (saved[1].defined()) {
      d_theta = (grad * saved[1]).sum_to_size(ctx->saved_data["theta_sizes"].toIntVector());  // theta's shape
    }
    return {Tensor(), d_mu, d_theta, Tensor(), Tensor()};
  }
};

void check_shapes(const Tensor& x, const Tensor& mu, const Tensor& theta) {
  if (x.dim() != 2 || mu.sizes() != x.sizes()) throw std::invalid_argument("nb_log_prob: x and mu must both be (B, G)");
  const int64_t B = x.size(0), G = x.size(1);
  const bool per_gene = theta.dim() == 1 && theta.size(0) == G;
  const bool per_cell = theta.dim() == 2 && (theta.size(0) == 1 || theta.size(0) == B) && theta.size(1) == G;
  if (!per_gene && !per_cell) throw std::invalid_argument("nb_log_prob: theta must be (G,), (1, G) or (B, G)");
}

}  // namespace

// log NB written with log1p (theta log(theta / (theta + mu)) -> -theta log1p(mu / theta),
// not a difference of two logs) and, above kStirlingTheta, with the lgamma difference
// expanded as in nb_term(). Each branch sees theta clamped to its own side so the
// branch at::where discards has finite gradients (0 * inf would poison the other one).
Tensor nb_log_prob_reference(const Tensor& x, const Tensor& mu, const Tensor& theta) {
  check_shapes(x, mu, theta);
  const Tensor log_mu = at::log(mu + kNbEps);    // (B, G)
  const Tensor lgamma_x1 = at::lgamma(x + 1);   // (B, G)

  const Tensor ts = theta.clamp_max(kStirlingTheta);
  // mu + eps in both logs of the ratio so it stays <= 1 when mu = 0 and theta < eps.
  const Tensor small = -ts * at::log1p(mu / ts) + x * (log_mu - at::log(ts + mu + kNbEps)) +
                       at::lgamma(x + ts) - at::lgamma(ts) - lgamma_x1;  // (B, G)

  const Tensor tl = theta.clamp_min(kStirlingTheta);
  const Tensor log1p_x = at::log1p(x / tl), log1p_mu = at::log1p(mu / tl);  // (B, G)
  const Tensor large = x * log_mu - tl * log1p_mu + x * (log1p_x - log1p_mu) + (tl - 0.5) * log1p_x - x +
                       stirling_correction(x + tl) - stirling_correction(tl) - lgamma_x1;  // (B, G)

  return at::where(theta > kStirlingTheta, large, small);  // (B, G)
}

namespace {

// Whether x, mu and theta are all float32 or all float64.
bool same_float(const Tensor& x, const Tensor& mu, const Tensor& theta) {
  return (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) && mu.scalar_type() == x.scalar_type() &&
         theta.scalar_type() == x.scalar_type();
}

bool all_on(at::DeviceType type, const Tensor& x, const Tensor& mu, const Tensor& theta) {
  return x.device().type() == type && mu.device().type() == type && theta.device().type() == type;
}

Tensor apply_fused(const char* name, const Tensor& x, const Tensor& mu, const Tensor& theta) {
  if (!same_float(x, mu, theta)) {
    throw std::invalid_argument(std::string(name) + ": x, mu and theta must all be float32 or all float64");
  }
  if (x.requires_grad()) throw std::invalid_argument(std::string(name) + ": no gradient for the counts");
  const bool grad = at::GradMode::is_enabled();
  return FusedNbLogProb::apply(x, mu, theta, grad && mu.requires_grad(), grad && theta.requires_grad());
}

}  // namespace

Tensor nb_log_prob_fused_cpu(const Tensor& x, const Tensor& mu, const Tensor& theta) {
  check_shapes(x, mu, theta);
  if (!all_on(at::kCPU, x, mu, theta)) throw std::invalid_argument("nb_log_prob_fused_cpu: CPU tensors only");
  return apply_fused("nb_log_prob_fused_cpu", x, mu, theta);
}

Tensor nb_log_prob_fused_cuda(const Tensor& x, const Tensor& mu, const Tensor& theta) {
  check_shapes(x, mu, theta);
  if (!cuda_kernels_built()) throw std::invalid_argument("nb_log_prob_fused_cuda: this core was built without CUDA");
  if (!all_on(at::kCUDA, x, mu, theta)) throw std::invalid_argument("nb_log_prob_fused_cuda: CUDA tensors only");
  return apply_fused("nb_log_prob_fused_cuda", x, mu, theta);
}

Tensor nb_log_prob(const Tensor& x, const Tensor& mu, const Tensor& theta) {
  if (same_float(x, mu, theta) && !x.requires_grad()) {
    if (all_on(at::kCPU, x, mu, theta)) return nb_log_prob_fused_cpu(x, mu, theta);
    if (cuda_kernels_built() && all_on(at::kCUDA, x, mu, theta)) return nb_log_prob_fused_cuda(x, mu, theta);
  }
  return nb_log_prob_reference(x, mu, theta);
}

}  // namespace exprflow
