#!/usr/bin/env bash
# Builds the standalone core against the CUDA LibTorch that ships inside a
# Python torch (2.x) and runs, on the GPU, the core's CUDA tests, the
# latent-token DiT benchmark beside the PyTorch reference, and then the whole
# GoogleTest suite. For a machine with a GPU, nvcc, CMake and `python3 -c
# "import torch"` but no R (the lent H200 machine); CI never runs it.
#
#   tools/cuda_check.sh OUT_DIR
#
# Where the machine has no GoogleTest or nlohmann-json, point at copies:
#   GTEST_SRC=path/to/googletest-source NLOHMANN_INCLUDE=dir-holding-nlohmann/
# PYTORCH_REFERENCE=path/to/pytorch_latent_dit.py adds the PyTorch side of the
# benchmark; SKIP_BENCH=1 leaves both sides out. Every step logs to OUT_DIR; a failed step does not stop the
# later ones that can still run.
set -u
out=${1:?usage: tools/cuda_check.sh OUT_DIR}
mkdir -p "$out"
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
work=${WORK_DIR:-/tmp/exprflow-cuda}
mkdir -p "$work"
step() { echo "== $* ($(date +%T))"; }

step "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvcc --version | tail -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
  cmake --version | head -1; c++ --version | head -1; } 2>&1 | tee "$out/machine.txt"

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
cxxflags="-D_GLIBCXX_USE_CXX11_ABI=$abi"
[ -n "${NLOHMANN_INCLUDE:-}" ] && cxxflags="$cxxflags -I$(cd "$NLOHMANN_INCLUDE" && pwd)"
prefix="$torch_prefix"

if [ -n "${GTEST_SRC:-}" ]; then
  step "googletest from $GTEST_SRC"
  cmake -S "$GTEST_SRC" -B "$work/gtest-build" -DBUILD_GMOCK=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$work/gtest" -DCMAKE_CXX_FLAGS="$cxxflags" >"$out/gtest.log" 2>&1 &&
    cmake --build "$work/gtest-build" -j"$jobs" --target install >>"$out/gtest.log" 2>&1 ||
    { echo "googletest did not build"; tail -20 "$out/gtest.log"; }
  prefix="$prefix;$work/gtest"
fi

# The CUDA language is only needed for the core's own kernels; a failure to
# enable it falls back to LibTorch's CUDA operators alone (logged).
configure() {
  cmake -S "$root/src/core" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DEXPRFLOW_BUILD_TESTS=ON \
    -DEXPRFLOW_BUILD_BENCH=ON -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS="$cxxflags" \
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,--allow-shlib-undefined" -DCMAKE_CUDA_ARCHITECTURES=90 "$@"
}
step "configure"
if ! configure -DEXPRFLOW_CUDA=ON >"$out/configure.log" 2>&1; then
  echo "configure with EXPRFLOW_CUDA=ON failed; retrying without cuDNN and the CUDA language"
  tail -30 "$out/configure.log"
  rm -rf "$work/build"
  configure -DEXPRFLOW_CUDA=OFF -DCAFFE2_USE_CUDNN=OFF >"$out/configure2.log" 2>&1 ||
    { tail -40 "$out/configure2.log"; exit 1; }
fi
grep -i "exprflow:\|cuda\|warn" "$out/configure.log" | head -20

step "build"
# -k: every compile error of this LibTorch in one pass.
cmake --build "$work/build" -j"$jobs" -- -k >"$out/build.log" 2>&1
build_rc=$?
grep -E "error|Error" "$out/build.log" | head -60
echo "build rc $build_rc"
tests="$work/build/exprflow_core_tests"
bench="$work/build/bench_latent_dit"

if [ -x "$tests" ]; then
  step "CUDA tests"
  "$tests" --gtest_filter='*Cuda*:*CUDA*:RuntimeInfo*' 2>&1 | tee "$out/cuda_tests.log" | tail -60
fi

if [ -x "$tests" ]; then
  step "model files under this LibTorch"
  "$tests" --gtest_filter='TensorBundle*:Legacy*:*SaveLoad*:Resources*:GenerativeModel.LoadErrors:LatentModel.Files*' \
    2>&1 | tee "$out/file_tests.log" | grep -E "OK|FAILED|Failure|PASSED" | tail -30
fi

if [ -x "$bench" ] && [ -z "${SKIP_BENCH:-}" ]; then
  step "benchmark: exprflow on the GPU"
  "$bench" --device cuda --batch 1024 --quick 2>&1 | tee "$out/bench_exprflow.txt"
fi
if [ -n "${PYTORCH_REFERENCE:-}" ] && [ -z "${SKIP_BENCH:-}" ]; then
  step "benchmark: the PyTorch reference on the GPU"
  # The reference is a CPU script: run it with CUDA as the default device and
  # a clock that waits for the GPU before each reading.
  for args in "--tokens 16 --dim 64 --layers 2 --heads 4 --hidden 512 --genes 2000" \
              "--genes 2000" "--tokens 16 --dim 64 --layers 2 --heads 4 --hidden 512 --genes 20000" "--genes 20000"; do
    echo "reference $args --batch 1024"
    python3 - "$PYTORCH_REFERENCE" $args --batch 1024 --steps 10 <<'EOF' 2>&1 | tee -a "$out/bench_pytorch.txt"
import runpy, sys, time, torch
torch.set_default_device("cuda")
clock = time.perf_counter
def synchronised_clock():
    torch.cuda.synchronize()
    return clock()
time.perf_counter = synchronised_clock
script = sys.argv[1]
sys.argv = [script] + sys.argv[2:]
runpy.run_path(script, run_name="__main__")
EOF
  done
fi

if [ -x "$tests" ]; then
  step "the whole GoogleTest suite"
  (cd "$work/build" && ctest -j"$jobs" --timeout 300 --output-on-failure >"$out/ctest.log" 2>&1)
  tail -40 "$out/ctest.log"
fi
step "done"
