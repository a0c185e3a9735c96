#include "runtime/linear.hpp"

namespace exprflow {

namespace {

// Products below this many multiply-adds stay in float: casting both
// operands and the result costs more than oneDNN saves (PyTorch 1.13 on this
// project's 2-core AMX machine, one thread, a Linear layer's forward +
// backward cast as here against float: 128 x 64 x 64 ran at 0.45x float's
// speed, 2,048 x 64 x 64 at 1.7x; measured while another job shared the CPU).
constexpr double kMinBfloat16MultiplyAdds = 4.0 * 1024 * 1024;

// The cast as a contiguous copy (to() alone keeps a view's strides, e.g.
// attention's heads permuted out of one projection), so that the products
// get row-major operands.
Tensor to_bfloat16(const Tensor& t) {
  return t.to(at::kBFloat16, /*non_blocking=*/false, /*copy=*/false, at::MemoryFormat::Contiguous);
}

// Whether a product of this float tensor would run in bfloat16 now: on the
// CPU (oneDNN) or a GPU (cuBLAS on tensor cores, float accumulation).
bool runs_in_bfloat16(const Tensor& a) {
  return matmul_precision() == MatmulPrecision::bfloat16 && a.scalar_type() == at::kFloat &&
         (a.device().is_cpu() || a.is_cuda());
}

}  // namespace

Tensor LinearImpl::bfloat16_weight() {
  const bool recording = at::GradMode::is_enabled() && weight.requires_grad();
  if (recording) {  // the cast must be part of the graph; a cache would only hold memory
    cached_weight_ = Tensor();
    cached_data_ = nullptr;
    return to_bfloat16(weight);
  }
  if (!cached_weight_.defined() || cached_data_ != weight.data_ptr() || cached_version_ != weight._version()) {
    cached_weight_ = to_bfloat16(weight);  // (out, in)
    cached_data_ = weight.data_ptr();
    cached_version_ = weight._version();
  }
  return cached_weight_;
}

Tensor LinearImpl::forward(const Tensor& input) {
  const double multiply_adds = static_cast<double>(input.numel()) * weight.size(0);
  if (!runs_in_bfloat16(input) || multiply_adds < kMinBfloat16MultiplyAdds) return torch::nn::LinearImpl::forward(input);
  // The bias is added in float after the product: bfloat16 would round it.
  Tensor out = at::linear(to_bfloat16(input), bfloat16_weight()).to(at::kFloat);  // (..., out)
  return bias.defined() ? out.add_(bias) : out;
}

Tensor matmul_at_precision(const Tensor& a, const Tensor& b) {
  // (..., n, k) x (..., k, m): a's elements times m multiply-adds, batches broadcast over a.
  const double multiply_adds = static_cast<double>(a.numel()) * b.size(-1);
  if (!runs_in_bfloat16(a) || b.scalar_type() != at::kFloat || multiply_adds < kMinBfloat16MultiplyAdds) {
    return at::matmul(a, b);
  }
  return at::matmul(to_bfloat16(a), to_bfloat16(b)).to(at::kFloat);
}

}  // namespace exprflow
