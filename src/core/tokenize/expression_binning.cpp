#include "tokenize/expression_binning.hpp"

#include <stdexcept>
#include <string>

namespace exprflow {

namespace {

Tensor equal_edges(int64_t n_bins, const at::TensorOptions& options) {
  // k / n in float, the same numbers a user gets from (1:(n-1)) / n in R
  // rounded to float: values on these edges land in the upper bin.
  return at::arange(1, n_bins, options.dtype(at::kFloat)) / static_cast<double>(n_bins);  // (n-1,)
}

}  // namespace

Tensor hard_bins(const Tensor& x, int64_t n_bins) {
  if (n_bins < 2) throw std::invalid_argument("n_bins must be at least 2, got " + std::to_string(n_bins));
  Tensor edges = equal_edges(n_bins, x.options()).to(x.dtype());
  // right = true: edges[k-1] <= x < edges[k] gives k, so an edge value goes up.
  return at::bucketize(x.contiguous(), edges, /*out_int32=*/false, /*right=*/true);
}

Tensor soft_bins(const Tensor& x, const Tensor& edges, double temperature) {
  if (!(temperature > 0)) throw std::invalid_argument("bin_temperature must be positive");
  Tensor above = at::sigmoid((x.unsqueeze(-1) - edges) / temperature);  // (..., n-1): P(x >= e_k)
  std::vector<int64_t> shape = x.sizes().vec();
  shape.push_back(1);
  Tensor ones = at::ones(shape, x.options()), zeros = at::zeros(shape, x.options());
  return at::cat({ones, above}, -1) - at::cat({above, zeros}, -1);  // (..., n)
}

ExpressionBinningImpl::ExpressionBinningImpl(int64_t n_bins, bool learned, double temperature)
    : n_bins_(n_bins), learned_(learned), temperature_(temperature) {
  if (n_bins < 2) throw std::invalid_argument("setting 'n_bins' must be at least 2, got " + std::to_string(n_bins));
  if (learned && !(temperature > 0)) {
    throw std::invalid_argument("setting 'bin_temperature' must be positive with learned bins");
  }
  if (learned) width_logits_ = register_parameter("width_logits", at::zeros({n_bins}));
}

Tensor ExpressionBinningImpl::edges() const {
  if (!learned_) return equal_edges(n_bins_, at::TensorOptions());
  Tensor widths = at::softmax(width_logits_, 0);   // (n,) positive, sum 1
  return at::cumsum(widths, 0).slice(0, 0, n_bins_ - 1);  // (n-1,) sorted in (0, 1)
}

Tensor ExpressionBinningImpl::indices(const Tensor& x) const { return hard_bins(x, n_bins_); }

Tensor ExpressionBinningImpl::forward(const Tensor& x) {
  if (learned_) return soft_bins(x, edges(), temperature_);   // (B, G, n)
  return at::one_hot(indices(x), n_bins_).to(x.dtype());      // (B, G, n)
}

}  // namespace exprflow
