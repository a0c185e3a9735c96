#include <gtest/gtest.h>

#include <string>

#include "exprflow/api.hpp"
#include "runtime/runtime_info.hpp"

using exprflow::blas_classify;

TEST(RuntimeInfo, ClassifiesBlasPaths) {
  // Debian's libblas.so.3 alternatives, resolved.
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"), "OpenBLAS");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"), "OpenBLAS");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"),
            "OpenBLAS");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"), "reference BLAS");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"), "reference BLAS");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3"), "BLIS");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/libblis.so.4"), "BLIS");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/atlas/libblas.so.3.10.3"), "ATLAS");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/libmkl_rt.so.2"), "MKL");
  EXPECT_EQ(blas_classify("/opt/intel/oneapi/mkl/latest/lib/intel64/libmkl_core.so.2"), "MKL");
  // R's internal BLAS and a netlib libblas outside Debian's layout.
  EXPECT_EQ(blas_classify("/usr/lib/R/lib/libRblas.so"), "reference BLAS");
  EXPECT_EQ(blas_classify("/usr/lib64/libblas.so.3.8.0"), "reference BLAS");
  // Not BLAS at all, even when a folder name happens to contain a vendor.
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13.0"), "");
  EXPECT_EQ(blas_classify("/home/user/publish/libc.so.6"), "");
  EXPECT_EQ(blas_classify("/home/mkl_fan/R/exprflow/libs/exprflow.so"), "");
  EXPECT_EQ(blas_classify("/usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3"), "");
  EXPECT_EQ(blas_classify(""), "");
}

TEST(RuntimeInfo, ReportsTorchAndThreads) {
  exprflow::RuntimeInfo info = exprflow::runtime_info();
  EXPECT_TRUE(info.torch_version.rfind("1.", 0) == 0 || info.torch_version.rfind("2.", 0) == 0)
      << info.torch_version;
  EXPECT_GE(info.torch_threads, 1);
  EXPECT_FALSE(info.parallel_info.empty());
  EXPECT_FALSE(info.blas.empty());
  EXPECT_EQ(info.blas_is_reference, info.blas == "reference BLAS");
  if (!info.cuda_available) {
    EXPECT_EQ(info.cuda_device_count, 0);
  }
#ifndef EXPRFLOW_WITH_CUDA
  EXPECT_FALSE(info.cuda_compiled);
#endif
  // LibTorch links a BLAS dynamically on Debian; the report should find it.
  if (info.blas.rfind("unknown", 0) != 0) {
    EXPECT_FALSE(info.blas_library.empty());
  }
}

TEST(RuntimeInfo, SetsTorchThreads) {
  int before = exprflow::runtime_info().torch_threads;
  exprflow::set_torch_threads(1);
  EXPECT_EQ(exprflow::runtime_info().torch_threads, 1);
  exprflow::set_torch_threads(before);
  EXPECT_EQ(exprflow::runtime_info().torch_threads, before);
  EXPECT_THROW(exprflow::set_torch_threads(0), std::invalid_argument);
}

TEST(RuntimeInfo, AdvisesAnOpenBlasCoreThatUsesTheCpu) {
  using exprflow::openblas_core_advice;
  const std::string avx512 = "avx avx2 avx512f avx512bw", avx2 = "avx avx2";
  // Debian's OpenBLAS 0.3.21 on an AVX-512 CPU it does not recognise.
  EXPECT_EQ(openblas_core_advice("Prescott", avx512), "SkylakeX");
  EXPECT_EQ(openblas_core_advice("NEHALEM", avx2), "Haswell");
  EXPECT_EQ(openblas_core_advice("Haswell", avx512), "SkylakeX");
  EXPECT_EQ(openblas_core_advice("Sandybridge", avx2), "Haswell");
  // Cores that already use the CPU, CPUs without AVX2, AVX-512 without BW,
  // and names the table does not know (another architecture) get no advice.
  EXPECT_EQ(openblas_core_advice("SkylakeX", avx512), "");
  EXPECT_EQ(openblas_core_advice("Cooperlake", avx512), "");
  EXPECT_EQ(openblas_core_advice("Haswell", avx2), "");
  EXPECT_EQ(openblas_core_advice("Zen", avx2), "");
  EXPECT_EQ(openblas_core_advice("Prescott", "avx"), "");
  EXPECT_EQ(openblas_core_advice("Prescott", "avx avx2 avx512f"), "Haswell");
  EXPECT_EQ(openblas_core_advice("armv8", avx512), "");
  EXPECT_EQ(openblas_core_advice("", avx512), "");
}

TEST(RuntimeInfo, ReportsTheOpenBlasCoreAndTheCpuExtensions) {
  const exprflow::RuntimeInfo info = exprflow::runtime_info();
  // The report agrees with the compiler's own CPU probe (CPUID).
#if defined(__x86_64__) && defined(__linux__)
  const auto listed = [&info](const std::string& flag) {
    return (" " + info.cpu_extensions + " ").find(" " + flag + " ") != std::string::npos;
  };
  EXPECT_EQ(listed("avx2"), __builtin_cpu_supports("avx2") != 0) << info.cpu_extensions;
  EXPECT_EQ(listed("avx512f"), __builtin_cpu_supports("avx512f") != 0) << info.cpu_extensions;
#endif
  if (info.blas != "OpenBLAS") GTEST_SKIP() << "BLAS here is " << info.blas;
  EXPECT_FALSE(info.blas_core.empty());  // Debian's OpenBLAS answers openblas_get_corename()
  EXPECT_GE(info.blas_threads, 1);
  EXPECT_EQ(info.blas_core_advice, exprflow::openblas_core_advice(info.blas_core, info.cpu_extensions));
}
