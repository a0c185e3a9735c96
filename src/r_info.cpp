// Glue of the runtime report: LibTorch version, CUDA, threads, BLAS.
#include "exprflow/memory.hpp"
#include "exprflow/precision.hpp"
#include "r_glue.hpp"

// [[Rcpp::export(.cpp_runtime_info)]]
Rcpp::List cpp_runtime_info() {
  return exprflow_r::guarded([&]() {
    const exprflow::RuntimeInfo info = exprflow::runtime_info();
    return Rcpp::List::create(
        Rcpp::Named("torch_version") = info.torch_version,
        Rcpp::Named("cuda_compiled") = info.cuda_compiled,
        Rcpp::Named("cuda_available") = info.cuda_available,
        Rcpp::Named("cuda_device_count") = info.cuda_device_count,
        Rcpp::Named("torch_threads") = info.torch_threads,
        Rcpp::Named("blas") = info.blas,
        Rcpp::Named("blas_library") = info.blas_library,
        Rcpp::Named("blas_is_reference") = info.blas_is_reference,
        Rcpp::Named("blas_core") = info.blas_core,
        Rcpp::Named("blas_threads") = info.blas_threads,
        Rcpp::Named("cpu_extensions") = info.cpu_extensions,
        Rcpp::Named("blas_core_advice") = info.blas_core_advice,
        Rcpp::Named("parallel_info") = info.parallel_info,
        Rcpp::Named("large_allocations_reused") = exprflow::large_allocations_reused(),
        Rcpp::Named("bfloat16_fast") = exprflow::bfloat16_matmul_is_fast());
  });
}

// [[Rcpp::export(.cpp_set_threads)]]
void cpp_set_threads(int n) {
  exprflow_r::guarded([&]() { exprflow::set_torch_threads(n); });
}

// [[Rcpp::export(.cpp_set_blas_threads)]]
bool cpp_set_blas_threads(int n) {
  return exprflow_r::guarded([&]() { return exprflow::set_blas_threads(n); });
}

// [[Rcpp::export(.cpp_reuse_large_allocations)]]
bool cpp_reuse_large_allocations(bool on) {
  return exprflow_r::guarded([&]() { return exprflow::reuse_large_allocations(on); });
}
