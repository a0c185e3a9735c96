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

}  // namespace exprflow
