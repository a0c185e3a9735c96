// The launchers of kernels/cuda/launchers.hpp in a core built without CUDA
// (compiled instead of the .cu files): each says so. The dispatchers never
// call them there (they check cuda_kernels_built() first); this keeps the
// call sites free of build switches.
#include <stdexcept>
#include <string>

#include "kernels/cuda/launchers.hpp"

namespace exprflow {
namespace cuda {

namespace {

[[noreturn]] void unavailable(const char* kernel) {
  throw std::logic_error(std::string("CUDA kernel ") + kernel + ": this core was built without CUDA");
}

}  // namespace

template <class T>
void nb_log_prob(const T*, const T*, const T*, int64_t, int64_t, int64_t, T*, T*, T*, void*) {
  unavailable("nb_log_prob");
}

void edge_attention_forward(const float*, const float*, const float*, const int64_t*, const int64_t*, int64_t,
                            int64_t, int64_t, float*, float*, void*) {
  unavailable("edge_attention_forward");
}

void edge_attention_backward(const float*, const float*, const float*, const float*, const float*, const float*,
                             const int64_t*, const int64_t*, int64_t, int64_t, int64_t, float*, float*, float*,
                             void*) {
  unavailable("edge_attention_backward");
}

template <class T>
void selective_scan_forward(const T*, const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,
                            int64_t, T*, void*) {
  unavailable("selective_scan_forward");
}

template <class T>
void selective_scan_backward(const T*, const T*, const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,
                             int64_t, int64_t, T*, T*, T*, T*, T*, T*, T*, void*) {
  unavailable("selective_scan_backward");
}

template void nb_log_prob<float>(const float*, const float*, const float*, int64_t, int64_t, int64_t, float*, float*,
                                 float*, void*);
template void nb_log_prob<double>(const double*, const double*, const double*, int64_t, int64_t, int64_t, double*,
                                  double*, double*, void*);
template void selective_scan_forward<float>(const float*, const float*, const float*, const float*, const float*,
                                            const float*, int64_t, int64_t, int64_t, int64_t, float*, void*);
template void selective_scan_forward<double>(const double*, const double*, const double*, const double*,
                                             const double*, const double*, int64_t, int64_t, int64_t, int64_t,
                                             double*, void*);
template void selective_scan_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                             const float*, const float*, int64_t, int64_t, int64_t, int64_t, float*,
                                             float*, float*, float*, float*, float*, float*, void*);
template void selective_scan_backward<double>(const double*, const double*, const double*, const double*,
                                              const double*, const double*, const double*, int64_t, int64_t, int64_t,
                                              int64_t, double*, double*, double*, double*, double*, double*, double*,
                                              void*);

}  // namespace cuda
}  // namespace exprflow
