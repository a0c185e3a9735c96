// The selective scan of a Mamba mixer, forward and backward (gradients for
// every input), fused CPU loop against the chunked LibTorch form it replaces
// on the CPU (chunk 4, the mixer's default) and the step-by-step reference.
//
//   bench_selective_scan [--threads N] [--batch N] [--length N] [--channels N] [--states N] [--reps N]
//
// Large blocks are reused as the R package does (reuse_large_allocations).
// Defaults: the scan of latent_ssm with ssm_layer = "mamba" in a training
// step (batch 128, 8 latent tokens of 128 wide, expand 2 -> 256 channels,
// 16 state entries). selective_scan.hpp's figures were taken at --batch 16
// --length 64.
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "backbone/selective_scan.hpp"
#include "bench_common.hpp"
#include "command_line.hpp"
#include "exprflow/api.hpp"
#include "exprflow/memory.hpp"

using namespace exprflow;
using namespace exprflow::bench;

namespace {

using Scan = std::function<Tensor(const std::vector<Tensor>&)>;

double median_ms(const Scan& scan, const std::vector<Tensor>& inputs, int reps) {
  std::vector<double> times;
  for (int r = 0; r < reps + 2; ++r) {
    std::vector<Tensor> leaves;
    for (const Tensor& t : inputs) leaves.push_back(t.detach().requires_grad_(true));
    const auto t0 = Clock::now();
    scan(leaves).sum().backward();
    if (r >= 2) times.push_back(1e3 * seconds_since(t0));  // two warm-up runs
  }
  return median(times);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 10;
  long batch = 128, length = 8, channels = 256, states = 16;
  CommandLine args(argc, argv,
                   "bench_selective_scan [--batch N] [--length N] [--channels N] [--states N] [--reps N] [--threads N]");
  threads = static_cast<int>(args.number("--threads", threads));
  batch = args.number("--batch", batch);
  length = args.number("--length", length);
  channels = args.number("--channels", channels);
  states = args.number("--states", states);
  reps = static_cast<int>(args.number("--reps", reps));
  args.finish();
  if (threads < 1 || batch < 1 || length < 1 || channels < 1 || states < 1 || reps < 1) {
    std::fprintf(stderr, "--threads, --batch, --length, --channels, --states and --reps must be positive\n");
    return 2;
  }
  set_torch_threads(threads);
  reuse_large_allocations(true);
  at::manual_seed(1);
  const std::vector<Tensor> inputs = {
      at::randn({batch, length, channels}),                           // u
      at::softplus(at::randn({batch, length, channels}) - 2),         // delta > 0
      -at::rand({channels, states}) * states - 0.1,                   // A < 0
      at::randn({batch, length, states}), at::randn({batch, length, states}),  // B, C
      at::randn({channels})};                                         // D
  const auto call = [](Tensor (*f)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   const Tensor&)) {
    return Scan([f](const std::vector<Tensor>& x) { return f(x[0], x[1], x[2], x[3], x[4], x[5]); });
  };
  const double chunked = median_ms(
      [](const std::vector<Tensor>& x) { return selective_scan_chunked(x[0], x[1], x[2], x[3], x[4], x[5], 4); },
      inputs, reps);
  const double reference = median_ms(call(&selective_scan_reference), inputs, reps);
  const double fused = median_ms(call(&selective_scan_fused_cpu), inputs, reps);
  std::printf("selective scan, forward + backward, B %ld L %ld E %ld N %ld, %d torch thread(s), median of %d\n", batch,
              length, channels, states, threads, reps);
  std::printf("chunked (4) %8.2f ms  step loop %8.2f ms  fused %8.2f ms  (%.1fx the chunked, %.1fx the loop)\n",
              chunked, reference, fused, chunked / fused, reference / fused);
  return 0;
}
