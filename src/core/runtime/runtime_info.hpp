// Which BLAS the process actually runs, for runtime_info() (api.hpp).
//
// Debian's LibTorch calls sgemm_ & co. through libblas.so.3, which the
// alternatives system points at OpenBLAS, BLIS, ATLAS, MKL or the slow
// reference implementation; the difference is an order of magnitude in
// training speed, so the package reports it. Torch-free.
#pragma once

#include <string>

namespace exprflow {

// The name reported for Debian's (or netlib's) reference libblas.
inline constexpr const char* kReferenceBlas = "reference BLAS";

// Classifies the resolved (realpath) file name of a loaded shared object:
// "OpenBLAS", "MKL", "BLIS", "ATLAS", kReferenceBlas, or "" when the object
// is not a BLAS we know. Only the file name and the name of its directory are
// looked at, so a home folder called "publish" is not taken for BLIS.
std::string blas_classify(const std::string& resolved_path);

// The CPU's vector extensions that matter to BLAS kernels, as Linux's
// /proc/cpuinfo names them, space separated, from "avx avx2 avx512f avx512bw
// avx512_bf16 amx_tile" ("" when unknown).
std::string cpu_vector_extensions();

// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels by CPU model
// and falls back to generic ones for models it does not know: 0.3.21 runs
// "Prescott" kernels on CPUs with AVX-512, ~4x slower at sgemm. Given the
// core it runs (openblas_get_corename(), any case) and the CPU's extensions,
// the OPENBLAS_CORETYPE value that uses the CPU fully: "SkylakeX" (AVX-512),
// "Haswell" (AVX2), or "" when the core already does or is not an x86 core
// this function knows.
std::string openblas_core_advice(const std::string& core, const std::string& cpu_extensions);

}  // namespace exprflow
