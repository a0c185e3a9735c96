// What one training step spends outside the network: the AdamW step
// (LibTorch's and exprflow's fused CPU one, train/optimiser.hpp) and the EMA update, on parameter sets the size of state_mlp's (2,000 and
// 20,000 genes), against the memory traffic they need at least. Median of 20.
//
//   bench_optimiser [--threads N]
#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_common.hpp"
#include "command_line.hpp"
#include "exprflow/api.hpp"
#include "train/optimiser.hpp"

using namespace exprflow;
using namespace exprflow::bench;

namespace {

// state_mlp's layers: Linear(G, 512), 3 FiLM blocks (512 -> 1024 -> 512, FiLM 512 -> 1536),
// Linear(512, G) and small embeddings.
std::vector<at::Tensor> parameters_like_state_mlp(long genes) {
  std::vector<std::vector<int64_t>> shapes = {{512, genes}, {512}, {genes, 512}, {genes}};
  for (int b = 0; b < 3; ++b) {
    for (const auto& s : std::vector<std::vector<int64_t>>{{1024, 512}, {1024}, {512, 1024}, {512}, {1536, 512}, {1536}}) {
      shapes.push_back(s);
    }
  }
  std::vector<at::Tensor> params;
  for (const auto& s : shapes) {
    at::Tensor p = at::randn(s).set_requires_grad(true);
    p.mutable_grad() = at::randn(s);
    params.push_back(p);
  }
  return params;
}

template <typename F>
double median_ms(F f) {
  std::vector<double> t;
  for (int r = 0; r < 22; ++r) {
    const auto t0 = Clock::now();
    f();
    if (r >= 2) t.push_back(seconds_since(t0));
  }
  return 1e3 * median(t);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  CommandLine args(argc, argv, "bench_optimiser [--threads N]");
  threads = static_cast<int>(args.number("--threads", threads));
  args.finish();
  set_torch_threads(threads);
  std::printf("%d torch thread(s)\n", threads);
  for (long genes : {2000L, 20000L}) {
    std::vector<at::Tensor> params = parameters_like_state_mlp(genes);
    std::vector<at::Tensor> average;
    long n = 0;
    for (const auto& p : params) {
      average.push_back(p.detach().clone());
      n += p.numel();
    }
    torch::optim::AdamW adamw(params, torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
    const double adam = median_ms([&] { adamw.step(); });
    std::vector<at::Tensor> fused_params;
    for (const auto& p : params) {
      at::Tensor q = p.detach().clone().set_requires_grad(true);
      q.mutable_grad() = p.grad().clone();
      fused_params.push_back(q);
    }
    AdamWSettings settings;
    auto fused = make_fused_cpu_adamw(fused_params, settings);
    const double fused_ms = median_ms([&] { fused->step(); });
    const double ema_two = median_ms([&] {
      at::NoGradGuard g;
      for (size_t i = 0; i < params.size(); ++i) average[i].mul_(0.999).add_(params[i], 0.001);
    });
    const double ema_lerp = median_ms([&] {
      at::NoGradGuard g;
      for (size_t i = 0; i < params.size(); ++i) average[i].lerp_(params[i], 0.001);
    });
    // Least traffic: AdamW reads p, g, m, v and writes p, m, v (7 floats);
    // EMA reads two and writes one (3 floats).
    std::printf("%6ld genes %6.2fM params | AdamW step: LibTorch %7.2f ms, fused %7.2f ms (>= %5.1f MB) |"
                " EMA mul_+add_ %6.2f ms, lerp_ %6.2f ms (>= %5.1f MB)\n",
                genes, n / 1e6, adam, fused_ms, 7 * 4 * n / 1e6, ema_two, ema_lerp, 3 * 4 * n / 1e6);
  }
  return 0;
}
