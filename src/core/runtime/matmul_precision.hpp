// Precision of the matrix products in the core's Linear layers (runtime/linear.hpp).
//
// "float32": LibTorch's float products (OpenBLAS sgemm on the CPU).
// "bfloat16": on the CPU or a GPU, a float Linear layer casts its input and
// weight to bfloat16 and multiplies them (on a GPU with cuBLAS on its tensor
// cores; on the CPU with oneDNN), accumulating in float; oneDNN on
// CPUs with AVX-512-BF16 or AMX runs several times faster than sgemm
// (measured: 0.7-0.9 TFLOP/s against 0.13-0.15 at 256-1024 square, one
// thread). The product comes back as float and everything else (bias,
// normalisation, activations, losses, the optimiser) stays float: the
// products lose digits (bfloat16 keeps 8 significant bits), nothing else
// does. Training chooses it per run (TrainerSettings::precision); tensors
// of other types are untouched.
//
// The setting is per thread, so that data-parallel ranks run as threads in
// the tests can differ; set it with a MatmulPrecisionGuard around the work.
// While a "bfloat16" guard is alive the process's thread shares swap: oneDNN
// multiplies on LibTorch's threads, which get OpenBLAS's count, and OpenBLAS
// one thread (matmul_precision.cpp says why and what it measured).
#pragma once

#include <string>

#include "exprflow/precision.hpp"  // bfloat16_matmul_is_fast()

namespace exprflow {

class Options;

enum class MatmulPrecision { float32, bfloat16 };

// "float32" | "bfloat16"; anything else is an error naming `setting`.
MatmulPrecision parse_matmul_precision(const std::string& text, const std::string& setting = "precision");
std::string matmul_precision_name(MatmulPrecision precision);

// The "precision" setting of a training or sampling option set; `fallback`
// when it has none.
MatmulPrecision matmul_precision_of(const Options& options, MatmulPrecision fallback = MatmulPrecision::float32);

// This thread's current precision (float32 unless a guard says otherwise).
MatmulPrecision matmul_precision();

// Sets this thread's precision for its lifetime, restoring the previous one
// (and, for "bfloat16", the thread shares when the last such guard goes).
class MatmulPrecisionGuard {
 public:
  explicit MatmulPrecisionGuard(MatmulPrecision precision);
  ~MatmulPrecisionGuard();
  MatmulPrecisionGuard(const MatmulPrecisionGuard&) = delete;
  MatmulPrecisionGuard& operator=(const MatmulPrecisionGuard&) = delete;

 private:
  MatmulPrecision previous_;
  bool shares_threads_;
};

}  // namespace exprflow
