#include "decode/log_rounding.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace exprflow {

double round_in_log_space(double log_value, double library, double u, double target) {
  if (!(log_value >= 0) || !(library > 0)) {
    throw std::invalid_argument("round_in_log_space needs a log value >= 0 and a positive library size");
  }
  const double scale = target / library;  // normalised units per count
  // The bracketing counts k <= count < k + 1, the floor fixed up where a
  // rounding error put k's log value above h (exact integers stay exact).
  double lower = std::floor(std::expm1(log_value) / scale);
  if (std::log1p(lower * scale) > log_value) lower = std::max(lower - 1, 0.0);
  const double lower_log = std::log1p(lower * scale), upper_log = std::log1p((lower + 1) * scale);
  const double above = std::min(std::max((log_value - lower_log) / (upper_log - lower_log), 0.0), 1.0);
  return lower + (u < above ? 1.0 : 0.0);
}

Tensor round_in_log_space(const Tensor& log_values, const Tensor& library, at::Generator generator, double target) {
  if (log_values.dim() != 2 || library.dim() != 1 || library.size(0) != log_values.size(0)) {
    throw std::invalid_argument("round_in_log_space needs (B, G) log values and (B,) library sizes");
  }
  if (at::isnan(log_values).any().item<bool>() || at::isnan(library).any().item<bool>()) {
    throw std::invalid_argument("round_in_log_space: log values and library sizes must not be NaN");
  }
  const Tensor h = log_values.to(at::kDouble).clamp_min(0.0);                 // (B, G)
  const Tensor counted = (library.to(at::kDouble) > 0).unsqueeze(1);          // (B, 1) cells with counts
  // Cells without counts get scale 1 here and 0 counts below.
  const Tensor scale = at::where(counted, target / library.to(at::kDouble).unsqueeze(1), at::ones_like(h));  // (B, G)
  // The bracketing counts k <= count < k + 1, their floor fixed up where a
  // rounding error put k's log value above h (exact integers stay exact).
  Tensor lower = at::floor(at::expm1(h) / scale);                           // (B, G)
  lower = at::where(at::log1p(lower * scale) > h, (lower - 1).clamp_min(0.0), lower);
  const Tensor lower_log = at::log1p(lower * scale);                        // (B, G)
  const Tensor upper_log = at::log1p((lower + 1) * scale);                  // (B, G)
  const Tensor above = ((h - lower_log) / (upper_log - lower_log)).clamp(0.0, 1.0);  // (B, G)
  const Tensor u = at::rand(h.sizes(), generator, h.options());              // (B, G)
  const Tensor counts = lower + (u < above).to(at::kDouble);                  // (B, G)
  return at::where(counted, counts, at::zeros_like(counts)).to(log_values.scalar_type());
}

}  // namespace exprflow
