// The negative-binomial log-probability of one count-VAE step, forward and
// backward (gradients for mu and theta), fused CPU kernel against the
// LibTorch-ops reference, on droplet-like counts (~90% zeros), per-gene theta.
//
//   bench_nb_log_prob [--threads N] [--batch N] [--genes N] [--reps N]
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "bench_common.hpp"
#include "command_line.hpp"
#include "decode/nb_log_prob.hpp"
#include "exprflow/api.hpp"

using namespace exprflow;
using namespace exprflow::bench;

namespace {

double median_ms(const std::function<Tensor(const Tensor&, const Tensor&)>& f, const Tensor& mu, const Tensor& theta,
                 int reps) {
  std::vector<double> times;
  for (int r = 0; r < reps + 2; ++r) {
    const Tensor m = mu.detach().requires_grad_(true), t = theta.detach().requires_grad_(true);
    const auto t0 = Clock::now();
    f(m, t).sum().backward();
    if (r >= 2) times.push_back(1e3 * seconds_since(t0));  // two warm-up runs
  }
  return median(times);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 20;
  long batch = 128;
  std::vector<long> gene_counts{2000, 20000};
  CommandLine args(argc, argv, "bench_nb_log_prob [--genes N] [--batch N] [--reps N] [--threads N]");
  threads = static_cast<int>(args.number("--threads", threads));
  batch = args.number("--batch", batch);
  if (const long genes = args.number("--genes", 0); genes != 0) gene_counts = {genes};
  reps = static_cast<int>(args.number("--reps", reps));
  args.finish();
  if (threads < 1 || batch < 1 || reps < 1 || gene_counts.front() < 1) {
    std::fprintf(stderr, "--threads, --batch, --genes and --reps must be positive\n");
    return 2;
  }
  set_torch_threads(threads);
  std::printf("NB log-probability, forward + backward, batch %ld, %d torch thread(s), median of %d\n", batch, threads,
              reps);
  for (long genes : gene_counts) {
    at::manual_seed(1);
    const Tensor mu = at::exp(at::randn({batch, genes}) * 1.5 - 1);                      // (B, G) expected counts
    const Tensor x = at::poisson(mu) * (at::rand({batch, genes}) < 0.3).to(at::kFloat);  // (B, G) ~90% zeros
    const Tensor theta = at::exp(at::randn({genes}) * 1.5 + 1);                          // (G,) both sides of 10
    const double zeros = (x == 0).to(at::kFloat).mean().item<double>();
    const double ref = median_ms([&](const Tensor& m, const Tensor& t) { return nb_log_prob_reference(x, m, t); },
                                 mu, theta, reps);
    const double fused = median_ms([&](const Tensor& m, const Tensor& t) { return nb_log_prob_fused_cpu(x, m, t); },
                                   mu, theta, reps);
    std::printf("%6ld genes (%.0f%% zeros): reference %8.2f ms  fused %8.2f ms  (%.1fx)\n", genes, 100 * zeros, ref,
                fused, ref / fused);
  }
  return 0;
}
