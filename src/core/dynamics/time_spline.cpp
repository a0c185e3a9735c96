#include "dynamics/time_spline.hpp"

#include <stdexcept>

namespace exprflow {

namespace {

// The natural cubic spline's second derivatives at the knots are linear in
// the knot values: m = S y, with m_0 = m_{K-1} = 0 and, inside,
//   h_{i-1} m_{i-1} + 2 (h_{i-1} + h_i) m_i + h_i m_{i+1}
//     = 6 ((y_{i+1} - y_i) / h_i - (y_i - y_{i-1}) / h_{i-1}).
// S depends on the knots alone, so it is solved once.
Tensor natural_spline_map(const std::vector<double>& t) {
  const int64_t K = static_cast<int64_t>(t.size());
  Tensor S = at::zeros({K, K}, at::kDouble);
  if (K < 3) return S.to(at::kFloat);
  const int64_t inner = K - 2;
  Tensor A = at::zeros({inner, inner}, at::kDouble), R = at::zeros({inner, K}, at::kDouble);
  auto a = A.accessor<double, 2>();
  auto r = R.accessor<double, 2>();
  for (int64_t i = 1; i <= inner; ++i) {
    const double h0 = t[i] - t[i - 1], h1 = t[i + 1] - t[i];
    const int64_t row = i - 1;
    a[row][row] = 2 * (h0 + h1);
    if (row > 0) a[row][row - 1] = h0;
    if (row + 1 < inner) a[row][row + 1] = h1;
    r[row][i - 1] = 6 / h0;
    r[row][i] = -6 / h0 - 6 / h1;
    r[row][i + 1] = 6 / h1;
  }
  S.slice(0, 1, K - 1) = at::linalg_solve(A, R);  // (inner, K)
  return S.to(at::kFloat);
}

// Tangents of the cubic Hermite path at the knots, linear in the knot values
// (m = D y): inside, the central secant through the two neighbours; at the
// ends, the end secant. Each tangent depends on its two neighbours only, so one noisy
// knot bends the path next to it and nowhere else (a natural spline spreads
// it over every segment).
Tensor hermite_tangent_map(const std::vector<double>& t) {
  const int64_t K = static_cast<int64_t>(t.size());
  Tensor D = at::zeros({K, K}, at::kDouble);
  auto d = D.accessor<double, 2>();
  d[0][0] = -1 / (t[1] - t[0]);
  d[0][1] = 1 / (t[1] - t[0]);
  d[K - 1][K - 2] = -1 / (t[K - 1] - t[K - 2]);
  d[K - 1][K - 1] = 1 / (t[K - 1] - t[K - 2]);
  for (int64_t i = 1; i + 1 < K; ++i) {
    const double h0 = t[i] - t[i - 1], h1 = t[i + 1] - t[i];
    // (y_{i+1} - y_{i-1}) / (h0 + h1): the secants weighted by their own
    // lengths, so a long gap next to a short one is not entered at the short
    // one's slope.
    d[i][i - 1] = -1 / (h0 + h1);
    d[i][i + 1] = 1 / (h0 + h1);
  }
  return D.to(at::kFloat);
}

}  // namespace

TimePaths::TimePaths(std::vector<double> knots, std::string kind) : knots_(std::move(knots)), kind_(std::move(kind)) {
  if (knots_.size() < 2) throw std::invalid_argument("paths need at least two time points");
  for (size_t i = 1; i < knots_.size(); ++i) {
    if (!(knots_[i] > knots_[i - 1])) throw std::invalid_argument("time points must increase");
  }
  if (kind_ != "spline" && kind_ != "hermite" && kind_ != "linear") {
    throw std::invalid_argument("path must be \"hermite\", \"spline\" or \"linear\"; got \"" + kind_ + "\"");
  }
  const int64_t K = static_cast<int64_t>(knots_.size());
  if (kind_ == "hermite") {
    knot_map_ = hermite_tangent_map(knots_);
  } else {
    knot_map_ = kind_ == "spline" ? natural_spline_map(knots_) : at::zeros({K, K});
  }
}

TimePaths::Point TimePaths::at(const Tensor& chains, const Tensor& tau) const {
  const int64_t K = static_cast<int64_t>(knots_.size());
  const Tensor knots = at::tensor(knots_, at::kDouble).to(chains.options());                  // (K,)
  // Segment of each tau: the last knot at or before it, at most K - 2.
  const Tensor segment = at::clamp(at::searchsorted(knots, tau.contiguous(), false, true) - 1, 0, K - 2);  // (B,)
  const Tensor t0 = knots.index_select(0, segment), t1 = knots.index_select(0, segment + 1);  // (B,)
  const Tensor h = (t1 - t0).unsqueeze(1);                                                     // (B, 1)
  const Tensor a = ((t1 - tau) / (t1 - t0)).unsqueeze(1), b = 1 - a;                          // (B, 1)
  const Tensor rows = at::arange(chains.size(0), segment.options());
  const Tensor y0 = chains.index({rows, segment}), y1 = chains.index({rows, segment + 1});   // (B, d)
  const Tensor m = at::einsum("kj,bjd->bkd", {knot_map_.to(chains.options()), chains});  // (B, K, d)
  const Tensor m0 = m.index({rows, segment}), m1 = m.index({rows, segment + 1});         // (B, d)
  Point p;
  if (kind_ == "hermite") {  // m: tangents; u = b, the position inside the segment
    const Tensor u = b, u2 = b.pow(2), u3 = b.pow(3);
    p.position = (2 * u3 - 3 * u2 + 1) * y0 + (u3 - 2 * u2 + u) * h * m0 + (-2 * u3 + 3 * u2) * y1 +
                 (u3 - u2) * h * m1;
    p.velocity = ((6 * u2 - 6 * u) * y0 + (-6 * u2 + 6 * u) * y1) / h + (3 * u2 - 4 * u + 1) * m0 +
                 (3 * u2 - 2 * u) * m1;
    return p;
  }
  p.position = a * y0 + b * y1 + ((a.pow(3) - a) * m0 + (b.pow(3) - b) * m1) * h.pow(2) / 6;
  p.velocity = (y1 - y0) / h + (-(3 * a.pow(2) - 1) * m0 + (3 * b.pow(2) - 1) * m1) * h / 6;
  return p;
}

}  // namespace exprflow
