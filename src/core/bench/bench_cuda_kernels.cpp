// The CUDA kernels (kernels/cuda) against the plain LibTorch ops they replace
// on the same GPU, forward + backward, median milliseconds:
// - the NB log-probability (gradients for mu and theta) against
//   nb_log_prob_reference, on droplet-like counts (~90% zeros);
// - the GRN edge attention against the gather version (segment softmax by
//   scatter ops), 2,000 genes / 100k edges and 20,000 / 1M;
// - the selective scan against the chunked form (chunk 4), latent_ssm's
//   training step (B 128, L 8, E 256, N 16) and a long sequence (B 16, L 1024).
//
//   bench_cuda_kernels [--reps N]
//
// Needs a core built with CUDA (EXPRFLOW_CUDA=ON) and a GPU; says so and
// exits 0 otherwise, so that `make bench` runs everywhere.
#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <utility>
#include <vector>

#include "backbone/edge_attention.hpp"
#include "backbone/edge_graph.hpp"
#include "backbone/selective_scan.hpp"
#include "bench_common.hpp"
#include "command_line.hpp"
#include "decode/nb_log_prob.hpp"
#include "runtime/cuda_stream.hpp"

using namespace exprflow;
using namespace exprflow::bench;

namespace {

// Median over `reps` runs after two warm-ups, the GPU drained around each.
double median_ms(const std::function<void()>& step, int reps) {
  std::vector<double> times;
  for (int r = 0; r < reps + 2; ++r) {
    torch::cuda::synchronize();
    const auto t0 = Clock::now();
    step();
    torch::cuda::synchronize();
    if (r >= 2) times.push_back(1e3 * seconds_since(t0));
  }
  return median(times);
}

// Forward + backward of sum(f(leaves)) with fresh leaves each run.
double forward_backward_ms(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           const std::vector<Tensor>& inputs, const std::vector<bool>& grad, int reps) {
  return median_ms(
      [&] {
        std::vector<Tensor> leaves;
        for (size_t i = 0; i < inputs.size(); ++i) leaves.push_back(inputs[i].detach().requires_grad_(grad[i]));
        f(leaves).sum().backward();
      },
      reps);
}

void report(const char* what, double plain_ms, double fused_ms) {
  std::printf("%-52s plain %9.3f ms | fused CUDA %9.3f ms | %6.1fx\n", what, plain_ms, fused_ms, plain_ms / fused_ms);
  std::fflush(stdout);
}

void nb_log_prob_case(int64_t B, int64_t G, int reps) {
  const auto opts = at::TensorOptions().device(at::kCUDA);
  const Tensor mu = at::exp(at::randn({B, G}, opts));                         // (B, G)
  const Tensor x = at::floor(at::rand({B, G}, opts) * 6) * (at::rand({B, G}, opts) < 0.1);  // (B, G), ~90% zeros
  const Tensor theta = at::exp(at::randn({G}, opts) * 2);                    // (G,)
  const std::vector<bool> grad{false, true, true};
  const double plain = forward_backward_ms(
      [](const std::vector<Tensor>& t) { return nb_log_prob_reference(t[0], t[1], t[2]); }, {x, mu, theta}, grad, reps);
  const double fused = forward_backward_ms(
      [](const std::vector<Tensor>& t) { return nb_log_prob_fused_cuda(t[0], t[1], t[2]); }, {x, mu, theta}, grad, reps);
  char what[96];
  std::snprintf(what, sizeof what, "NB log-prob       B %5ld x G %6ld", long(B), long(G));
  report(what, plain, fused);
}

void edge_attention_case(int64_t B, int64_t H, int64_t G, int64_t Dh, int64_t edges, int reps) {
  at::manual_seed(1);
  const Tensor ends = at::randint(0, G, {edges, 2}, at::kLong);
  const auto* e = ends.data_ptr<int64_t>();
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t i = 0; i < edges; ++i) pairs.emplace_back(e[2 * i], e[2 * i + 1]);
  const EdgeIndex cpu = EdgeIndex::of(EdgeGraph::from_pairs(pairs, G));
  const EdgeIndex graph{cpu.offsets.cuda(), cpu.sources.cuda(), cpu.targets.cuda(), cpu.cell_node};
  const auto opts = at::TensorOptions().device(at::kCUDA);
  const std::vector<Tensor> qkv{at::randn({B, H, G, Dh}, opts), at::randn({B, H, G, Dh}, opts),
                                at::randn({B, H, G, Dh}, opts)};
  const std::vector<bool> grad{true, true, true};
  const double plain = forward_backward_ms(
      [&](const std::vector<Tensor>& t) { return edge_attention_gather(t[0], t[1], t[2], graph); }, qkv, grad, reps);
  const double fused = forward_backward_ms(
      [&](const std::vector<Tensor>& t) { return edge_attention_fused_cuda(t[0], t[1], t[2], graph); }, qkv, grad,
      reps);
  char what[96];
  std::snprintf(what, sizeof what, "edge attention    B %ld H %ld G %ld Dh %ld, %ld edges", long(B), long(H), long(G),
                long(Dh), long(edges));
  report(what, plain, fused);
}

void selective_scan_case(int64_t B, int64_t L, int64_t E, int64_t N, int reps) {
  const auto opts = at::TensorOptions().device(at::kCUDA);
  const std::vector<Tensor> in{at::randn({B, L, E}, opts), at::softplus(at::randn({B, L, E}, opts)) * 0.1,
                               -at::rand({E, N}, opts) * 3 - 0.1, at::randn({B, L, N}, opts),
                               at::randn({B, L, N}, opts), at::randn({E}, opts)};
  const std::vector<bool> grad(6, true);
  const double plain = forward_backward_ms(
      [](const std::vector<Tensor>& t) { return selective_scan_chunked(t[0], t[1], t[2], t[3], t[4], t[5], 4); }, in,
      grad, reps);
  const double fused = forward_backward_ms(
      [](const std::vector<Tensor>& t) { return selective_scan_fused_cuda(t[0], t[1], t[2], t[3], t[4], t[5]); }, in,
      grad, reps);
  char what[96];
  std::snprintf(what, sizeof what, "selective scan    B %ld L %ld E %ld N %ld", long(B), long(L), long(E), long(N));
  report(what, plain, fused);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  CommandLine args(argc, argv, "bench_cuda_kernels [--reps N]");
  reps = static_cast<int>(args.number("--reps", reps));
  args.finish();
  if (!cuda_kernels_built() || !torch::cuda::is_available()) {
    std::printf("bench_cuda_kernels: %s; nothing to measure\n",
                cuda_kernels_built() ? "no GPU visible" : "this core was built without CUDA");
    return 0;
  }
  std::printf("forward + backward, median of %d\n", reps);
  nb_log_prob_case(512, 2000, reps);
  nb_log_prob_case(512, 20000, reps);
  edge_attention_case(32, 4, 2000, 16, 100000, reps);
  edge_attention_case(8, 4, 20000, 16, 1000000, reps);
  selective_scan_case(128, 8, 256, 16, reps);
  selective_scan_case(16, 1024, 256, 16, reps);
  return 0;
}
