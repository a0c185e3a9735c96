#include "runtime/matmul_precision.hpp"

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "exprflow/api.hpp"
#include "exprflow/options.hpp"
#include "runtime/runtime_info.hpp"

namespace exprflow {

namespace {

thread_local MatmulPrecision current = MatmulPrecision::float32;

// The package gives LibTorch one thread and the cores to OpenBLAS, which
// does float products. oneDNN's bfloat16 products run on LibTorch's own
// (OpenMP) threads, so while any bfloat16 guard is alive the shares swap:
// LibTorch gets OpenBLAS's threads, OpenBLAS one (its idle threads spin and
// would take the cores from LibTorch's). Measured on 2 cores, 2,000 genes,
// training cells/s against float32 with 1 + 2 threads: bfloat16 with 1 + 2
// threads 1.0-1.2x, with 2 + 1 threads 1.5-2.1x (bench_compositions).
std::mutex share_mutex;
int bfloat16_guards = 0;  // alive on any thread
int saved_torch_threads = 0, saved_blas_threads = 0;

void enter_bfloat16() {
  std::lock_guard<std::mutex> lock(share_mutex);
  if (bfloat16_guards++ > 0) return;
  saved_torch_threads = at::get_num_threads();
  saved_blas_threads = runtime_info().blas_threads;  // 0: not OpenBLAS (left alone)
  if (saved_blas_threads > 0) {
    set_torch_threads(std::max(saved_torch_threads, saved_blas_threads));
    set_blas_threads(1);
  }
}

void leave_bfloat16() {
  std::lock_guard<std::mutex> lock(share_mutex);
  if (--bfloat16_guards > 0 || saved_blas_threads <= 0) return;
  set_blas_threads(saved_blas_threads);
  set_torch_threads(saved_torch_threads);
}

}  // namespace

MatmulPrecision parse_matmul_precision(const std::string& text, const std::string& setting) {
  if (text == "float32") return MatmulPrecision::float32;
  if (text == "bfloat16") return MatmulPrecision::bfloat16;
  throw std::invalid_argument(setting + " must be \"float32\" or \"bfloat16\", not \"" + text + "\"");
}

std::string matmul_precision_name(MatmulPrecision precision) {
  return precision == MatmulPrecision::bfloat16 ? "bfloat16" : "float32";
}

MatmulPrecision matmul_precision_of(const Options& options, MatmulPrecision fallback) {
  return parse_matmul_precision(options.text("precision", matmul_precision_name(fallback)));
}

MatmulPrecision matmul_precision() { return current; }

bool bfloat16_matmul_is_fast() {
  static const bool fast = [] {
    const std::string flags = " " + cpu_vector_extensions() + " ";
    const bool units = flags.find(" avx512_bf16 ") != std::string::npos || flags.find(" amx_tile ") != std::string::npos;
    return units && at::hasMKLDNN();
  }();
  return fast;
}

MatmulPrecisionGuard::MatmulPrecisionGuard(MatmulPrecision precision)
    : previous_(current), shares_threads_(precision == MatmulPrecision::bfloat16) {
  current = precision;
  if (shares_threads_) enter_bfloat16();
}

MatmulPrecisionGuard::~MatmulPrecisionGuard() {
  current = previous_;
  if (shares_threads_) leave_bfloat16();
}

}  // namespace exprflow
