#include "runtime/matmul_precision.hpp"

#include <ATen/Context.h>

#include <stdexcept>

#include "runtime/runtime_info.hpp"

namespace exprflow {

namespace {
thread_local MatmulPrecision current = MatmulPrecision::float32;
}  // namespace

MatmulPrecision parse_matmul_precision(const std::string& text, const std::string& setting) {
  if (text == "float32") return MatmulPrecision::float32;
  if (text == "bfloat16") return MatmulPrecision::bfloat16;
  throw std::invalid_argument(setting + " must be \"float32\" or \"bfloat16\", not \"" + text + "\"");
}

std::string matmul_precision_name(MatmulPrecision precision) {
  return precision == MatmulPrecision::bfloat16 ? "bfloat16" : "float32";
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

MatmulPrecisionGuard::MatmulPrecisionGuard(MatmulPrecision precision) : previous_(current) { current = precision; }

MatmulPrecisionGuard::~MatmulPrecisionGuard() { current = previous_; }

}  // namespace exprflow
