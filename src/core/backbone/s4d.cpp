#include "backbone/s4d.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace exprflow {

namespace {

void check_input(const Tensor& u, int64_t channels) {
  if (u.dim() != 3 || u.size(2) != channels) {
    std::ostringstream msg;
    msg << "S4D layer: input must be (batch, length, " << channels << "), got " << u.sizes();
    throw std::invalid_argument(msg.str());
  }
}

}  // namespace

S4dImpl::S4dImpl(int64_t channels, int64_t state_size, const std::string& init, double dt_min, double dt_max) {
  if (channels < 1) throw std::invalid_argument("S4D layer: channels must be positive");
  if (state_size < 2 || state_size % 2 != 0) {
    throw std::invalid_argument("setting 'state_size' must be an even number >= 2 for the s4d layer, got " +
                                std::to_string(state_size));
  }
  if (!(dt_min > 0 && dt_min <= dt_max)) throw std::invalid_argument("S4D layer: need 0 < dt_min <= dt_max");

  const int64_t modes = state_size / 2;
  const double N = static_cast<double>(state_size);
  Tensor n = at::arange(modes, at::kFloat).unsqueeze(0).expand({channels, modes});  // (H, N/2)
  Tensor imag;
  if (init == "lin") {
    imag = M_PI * n;
  } else if (init == "inv") {
    imag = (N / M_PI) * (N / (2 * n + 1) - 1);
  } else {
    throw std::invalid_argument("setting 'init' must be one of \"lin\", \"inv\" (S4D initialisation), got \"" + init +
                                "\"");
  }

  log_dt_ =
      register_parameter("log_dt", at::rand({channels}) * (std::log(dt_max) - std::log(dt_min)) + std::log(dt_min));
  log_A_real_ = register_parameter("log_A_real", at::full({channels, modes}, std::log(0.5)));
  A_imag_ = register_parameter("A_imag", imag.contiguous());
  // Complex standard normal: each part has variance 1/2.
  C_real_ = register_parameter("C_real", at::randn({channels, modes}) * std::sqrt(0.5));
  C_imag_ = register_parameter("C_imag", at::randn({channels, modes}) * std::sqrt(0.5));
  D_ = register_parameter("D", at::randn({channels}));
}

Tensor S4dImpl::kernel(int64_t length) {
  Tensor dt = log_dt_.exp().unsqueeze(1);      // (H, 1)
  Tensor a = -log_A_real_.exp(), b = A_imag_;  // (H, N/2): A = a + ib, a < 0
  Tensor dtA_re = a * dt, dtA_im = b * dt;     // (H, N/2)

  // Bbar = (exp(dt A) - 1) / A = e * conj(A) / |A|^2; |A| > 0 as a < 0.
  Tensor decay = dtA_re.exp();  // (H, N/2): |Abar|
  Tensor e_re = decay * dtA_im.cos() - 1, e_im = decay * dtA_im.sin();
  Tensor norm2 = a * a + b * b;
  Tensor bbar_re = (e_re * a + e_im * b) / norm2, bbar_im = (e_im * a - e_re * b) / norm2;
  // C' = C Bbar: the kernel's coefficients.
  Tensor cp_re = C_real_ * bbar_re - C_imag_ * bbar_im;  // (H, N/2)
  Tensor cp_im = C_real_ * bbar_im + C_imag_ * bbar_re;  // (H, N/2)

  // Vandermonde: Abar^l = exp(l dtA_re) (cos(l dtA_im) + i sin(l dtA_im)).
  Tensor l = at::arange(length, log_dt_.options());     // (L)
  Tensor magnitude = (dtA_re.unsqueeze(-1) * l).exp();  // (H, N/2, L)
  Tensor angle = dtA_im.unsqueeze(-1) * l;              // (H, N/2, L)
  Tensor power_re = magnitude * angle.cos(), power_im = magnitude * angle.sin();
  // K_l = 2 Re(sum_n C'_n Abar_n^l)
  return 2 * (cp_re.unsqueeze(-1) * power_re - cp_im.unsqueeze(-1) * power_im).sum(1);  // (H, L)
}

Tensor S4dImpl::forward(const Tensor& u) {
  check_input(u, D_.size(0));
  const int64_t L = u.size(1);
  Tensor k = kernel(L);          // (H, L)
  Tensor x = u.transpose(1, 2);  // (B, H, L)
  // Zero-padding both to 2L turns the FFT's circular convolution into a
  // linear (causal) one over the first L outputs.
  Tensor spectrum = at::fft_rfft(x, 2 * L, -1) * at::fft_rfft(k, 2 * L, -1);  // (B, H, L + 1) complex
  Tensor y = at::fft_irfft(spectrum, 2 * L, -1).narrow(-1, 0, L);             // (B, H, L)
  return y.transpose(1, 2) + u * D_;                                          // (B, L, H)
}

Tensor S4dImpl::reference_recurrence(const Tensor& u) {
  check_input(u, D_.size(0));
  Tensor A = at::complex(-log_A_real_.exp(), A_imag_);  // (H, N/2)
  Tensor dtA = A * log_dt_.exp().unsqueeze(1);          // (H, N/2)
  Tensor A_bar = dtA.exp();                             // (H, N/2)
  Tensor B_bar = (A_bar - 1) / A;                       // (H, N/2), B = 1
  Tensor C = at::complex(C_real_, C_imag_);             // (H, N/2)

  Tensor x = at::zeros({u.size(0), A.size(0), A.size(1)}, A.options());  // (B, H, N/2) state
  std::vector<Tensor> ys;
  for (const Tensor& u_k : u.unbind(1)) {                    // (B, H)
    x = A_bar * x + B_bar * u_k.unsqueeze(-1);               // (B, H, N/2)
    ys.push_back(2 * at::real((C * x).sum(-1)) + D_ * u_k);  // (B, H)
  }
  return at::stack(ys, 1);  // (B, L, H)
}

}  // namespace exprflow
