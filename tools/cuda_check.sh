#!/usr/bin/env bash
# Builds the standalone core with its CUDA kernels against the CUDA LibTorch
# inside a Python torch (2.x) and runs, on the GPU: the core's CUDA tests
# (each kernel against its CPU reference; every composition trains and
# samples on "cuda"), the whole GoogleTest suite, and the GPU benchmarks
# (kernels against plain LibTorch ops, the latent-token DiT in float32 and
# bfloat16, every composition, and the PyTorch twins of four compositions
# on the same GPU). For a machine with a GPU, nvcc, CMake and `python3 -c
# "import torch"` but no R (the lent H200 machine); CI never runs it.
#
#   tools/cuda_check.sh OUT_DIR
#
# Where the machine has no GoogleTest, nlohmann-json or HDF5, point at copies:
#   GTEST_SRC=googletest-source NLOHMANN_INCLUDE=dir-holding-nlohmann/
#   HDF5_ROOT=dir-with-include-and-lib (its libraries' own dependencies on
#   LD_LIBRARY_PATH)
# CUDA_ARCH (default: the first GPU's compute capability, e.g. 90);
# SKIP_BENCH=1 builds and tests only; BENCH_TIMEOUT seconds per benchmark
# (default 300); WORK_DIR the build folder (default /tmp/exprflow-cuda).
# Every step logs to OUT_DIR; a failed step does not stop the later ones
# that can still run.
set -u
out=${1:?usage: tools/cuda_check.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
work=${WORK_DIR:-/tmp/exprflow-cuda}
mkdir -p "$work"
step() { echo "== $* ($(date +%T))"; }

step "machine"
{ nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader; nvcc --version | tail -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
  cmake --version | head -1; c++ --version | head -1; } 2>&1 | tee "$out/machine.txt"

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
arch=${CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')}
cxxflags="-D_GLIBCXX_USE_CXX11_ABI=$abi"
[ -n "${NLOHMANN_INCLUDE:-}" ] && cxxflags="$cxxflags -I$(cd "$NLOHMANN_INCLUDE" && pwd)"
prefix="$torch_prefix"
hdf5_args=()
# Without h5cc, FindHDF5 takes the headers and libhdf5 under HDF5_ROOT.
[ -n "${HDF5_ROOT:-}" ] && hdf5_args=(-DHDF5_ROOT="$HDF5_ROOT" -DHDF5_C_COMPILER_EXECUTABLE=/nonexistent
                                      -DHDF5_NO_FIND_PACKAGE_CONFIG_FILE=ON)

if [ -n "${GTEST_SRC:-}" ]; then
  step "googletest from $GTEST_SRC"
  cmake -S "$GTEST_SRC" -B "$work/gtest-build" -DBUILD_GMOCK=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$work/gtest" -DCMAKE_CXX_FLAGS="$cxxflags" >"$out/gtest.log" 2>&1 &&
    cmake --build "$work/gtest-build" -j"$jobs" --target install >>"$out/gtest.log" 2>&1 ||
    { echo "googletest did not build"; tail -20 "$out/gtest.log"; }
  prefix="$prefix;$work/gtest"
fi

configure() {
  cmake -S "$root/src/core" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DEXPRFLOW_BUILD_TESTS=ON \
    -DEXPRFLOW_BUILD_BENCH=ON -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS="$cxxflags" \
    -DEXPRFLOW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" "${hdf5_args[@]}" "$@" >>"$out/configure.log" 2>&1
}
build() { cmake --build "$work/build" -j"$jobs" -- -k >>"$out/build.log" 2>&1; }

step "configure (sm_$arch)"
configure || { tail -40 "$out/configure.log"; exit 1; }
grep "exprflow:" "$out/configure.log"

step "build"
# -k: every compile error of this LibTorch in one pass.
if ! build; then
  grep -E "error|Error" "$out/build.log" | head -60
  # Training across processes is the part most tied to LibTorch's version:
  # without it the rest can still be tested.
  if grep -q "data_parallel.cpp" "$out/build.log"; then
    step "build again without Gloo"
    configure -DEXPRFLOW_GLOO_INCLUDE=EXPRFLOW_GLOO_INCLUDE-NOTFOUND && build
  fi
fi
tests="$work/build/exprflow_core_tests"
bench="$work/build"

if [ -x "$tests" ]; then
  step "CUDA tests"
  "$tests" --gtest_filter='*Cuda*:*CUDA*:RuntimeInfo*' 2>&1 | tee "$out/cuda_tests.log" |
    grep -E "^\[ *(OK|FAILED|PASSED) |Failure" | tail -60
  step "the whole GoogleTest suite"
  "$tests" --gtest_brief=1 >"$out/tests.log" 2>&1
  grep -E "Failure|FAILED|PASSED|SKIPPED \]" "$out/tests.log" | tail -30
fi

[ -n "${SKIP_BENCH:-}" ] && { step "done"; exit 0; }
T="timeout ${BENCH_TIMEOUT:-300}"
if [ -x "$bench/bench_cuda_kernels" ]; then
  step "benchmark: the CUDA kernels against plain LibTorch ops"
  $T "$bench/bench_cuda_kernels" 2>&1 | tee "$out/bench_cuda_kernels.txt"
fi
if [ -x "$bench/bench_latent_dit" ]; then
  for precision in float32 bfloat16; do
    step "benchmark: the latent-token DiT, $precision products"
    $T "$bench/bench_latent_dit" --device cuda --precision $precision 2>&1 | tee "$out/bench_latent_dit_$precision.txt"
    $T "$bench/bench_latent_dit" --device cuda --precision $precision --config default --genes 2000 --batch 1024 2>&1 |
      tail -1 | tee -a "$out/bench_latent_dit_$precision.txt"
  done
fi
if [ -x "$bench/bench_compositions" ]; then
  step "benchmark: every composition, and PyTorch twins on the same GPU"
  $T "$bench/bench_compositions" --device cuda --genes 2000 2>&1 | tee "$out/bench_compositions.txt"
  for arch in latent_tokens latent_dit latent_mlp grn_attention; do
    $T "$bench/bench_compositions" --device cuda --genes 2000 --sample-cells 0 --architecture $arch 2>&1 | tail -1
    PYTHONUNBUFFERED=1 $T python3 "$root/src/core/bench/pytorch_compositions.py" --device cuda --genes 2000 \
      --architecture $arch 2>&1 | tail -1
  done | tee "$out/bench_pytorch_twins.txt"
fi
step "done"
