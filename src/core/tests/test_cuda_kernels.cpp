// The CUDA kernels (kernels/cuda) against the fused CPU kernels they mirror,
// values and gradients, on a GPU (skipped without one); and, in every build,
// that asking for them where they cannot run says why.
#include <gtest/gtest.h>

#include <vector>

#include "backbone/edge_attention.hpp"
#include "backbone/edge_graph.hpp"
#include "backbone/selective_scan.hpp"
#include "decode/nb_log_prob.hpp"
#include "error_message.hpp"
#include "kernels/cuda/launchers.hpp"
#include "runtime/cuda_stream.hpp"

using namespace exprflow;

namespace {

bool gpu_kernels_runnable() { return cuda_kernels_built() && at::hasCUDA(); }

// Leaves that require a gradient, on `device`, holding the same values as `of`.
std::vector<Tensor> leaves_on(const std::vector<Tensor>& of, at::Device device) {
  std::vector<Tensor> out;
  for (const Tensor& t : of) out.push_back(t.detach().to(device).requires_grad_(t.requires_grad()));
  return out;
}

// The output and the gradients of sum(out * w) for the leaves that require one (on the CPU).
template <class F>
std::vector<Tensor> value_and_gradients(F&& f, const std::vector<Tensor>& in, const Tensor& w) {
  const Tensor out = f(in);
  (out * w.to(out.device())).sum().backward();
  std::vector<Tensor> result{out.detach().cpu()};
  for (const Tensor& t : in) {
    if (t.requires_grad()) result.push_back(t.grad().cpu());
  }
  return result;
}

void expect_all_close(const std::vector<Tensor>& gpu, const std::vector<Tensor>& cpu, double rtol, double atol) {
  ASSERT_EQ(gpu.size(), cpu.size());
  for (size_t i = 0; i < gpu.size(); ++i) {
    EXPECT_TRUE(at::allclose(gpu[i], cpu[i], rtol, atol))
        << "output " << i << ": largest difference " << (gpu[i] - cpu[i]).abs().max().item<double>();
  }
}

// Counts with many zeros and a long tail, and NB parameters on both sides
// of the Stirling switch (theta 10).
std::vector<Tensor> nb_inputs(at::ScalarType type, bool per_cell_theta) {
  at::manual_seed(3);
  const auto opts = at::TensorOptions().dtype(type);
  const Tensor mu = at::exp(at::randn({37, 129}, opts) * 2);  // (B, G)
  const Tensor x = at::floor(mu * at::exp(at::randn({37, 129}, opts)) * (at::rand({37, 129}, opts) > 0.4));  // (B, G)
  const Tensor theta = at::exp(at::randn(per_cell_theta ? std::vector<int64_t>{37, 129} : std::vector<int64_t>{129},
                                         opts) * 3);  // (G,) or (B, G)
  return {x, mu.requires_grad_(), theta.requires_grad_()};
}

}  // namespace

TEST(CudaKernels, SayWhyTheyCannotRunHere) {
  const Tensor x = at::ones({2, 3}), theta = at::ones({3});
  const std::string why = error_of([&] { nb_log_prob_fused_cuda(x, x, theta); });
  EXPECT_TRUE(mentions(why, cuda_kernels_built() ? "CUDA tensors only" : "built without CUDA")) << why;
  const Tensor q = at::randn({1, 1, 7, 4});
  const EdgeIndex graph = EdgeIndex::of(EdgeGraph::from_pairs({{0, 1}}, 7));
  EXPECT_TRUE(mentions(error_of([&] { edge_attention_fused_cuda(q, q, q, graph); }), "CUDA"));
  const Tensor u = at::randn({2, 3, 4}), A = -at::ones({4, 2}), BC = at::randn({2, 3, 2}), D = at::ones({4});
  EXPECT_TRUE(mentions(error_of([&] { selective_scan_fused_cuda(u, u, A, BC, BC, D); }), "CUDA"));
  // And the dispatchers keep to the CPU kernels on the CPU.
  EXPECT_TRUE(at::equal(nb_log_prob(x, x, theta), nb_log_prob_fused_cpu(x, x, theta)));
  if (!cuda_kernels_built()) {
    EXPECT_THROW(current_cuda_stream(x), std::logic_error);
    float none = 0;
    EXPECT_THROW(cuda::nb_log_prob<float>(&none, &none, &none, 1, 1, 0, &none, nullptr, nullptr, nullptr),
                 std::logic_error);
  }
}

TEST(CudaKernels, NbLogProbMatchesTheFusedCpuKernel) {
  if (!gpu_kernels_runnable()) GTEST_SKIP() << "no CUDA build or no GPU";
  const Tensor w = at::randn({37, 129}, at::kDouble);
  for (at::ScalarType type : {at::kDouble, at::kFloat}) {
    for (bool per_cell : {false, true}) {
      const std::vector<Tensor> in = nb_inputs(type, per_cell);
      const auto fused = [](const std::vector<Tensor>& t) { return nb_log_prob(t[0], t[1], t[2]); };
      const auto gpu = value_and_gradients(fused, leaves_on(in, at::kCUDA), w.to(type));
      const auto cpu = value_and_gradients(fused, leaves_on(in, at::kCPU), w.to(type));
      // Both kernels compute each term in double; float32 differs only in the stores and the gradient sums.
      expect_all_close(gpu, cpu, type == at::kDouble ? 1e-10 : 1e-5, type == at::kDouble ? 1e-10 : 1e-4);
      EXPECT_TRUE(at::equal(fused(leaves_on(in, at::kCUDA)).cpu(),
                            nb_log_prob_fused_cuda(in[0].cuda(), in[1].detach().cuda(), in[2].detach().cuda()).cpu()))
          << "nb_log_prob() on the GPU is the fused kernel";
    }
  }
}

TEST(CudaKernels, EdgeAttentionMatchesTheFusedCpuKernel) {
  if (!gpu_kernels_runnable()) GTEST_SKIP() << "no CUDA build or no GPU";
  // A random network over 300 genes with a cell node, head dimensions that
  // fill one lane (8), all four (128) and a ragged share (40).
  at::manual_seed(5);
  std::vector<std::pair<int64_t, int64_t>> pairs;
  const Tensor ends = at::randint(0, 300, {1500, 2}, at::kLong);
  for (int64_t e = 0; e < ends.size(0); ++e) pairs.emplace_back(ends[e][0].item<int64_t>(), ends[e][1].item<int64_t>());
  const EdgeGraph graph = EdgeGraph::from_pairs(pairs, 300).with_cell_node();
  const EdgeIndex on_cpu = EdgeIndex::of(graph);
  const EdgeIndex on_gpu{on_cpu.offsets.cuda(), on_cpu.sources.cuda(), on_cpu.targets.cuda(), on_cpu.cell_node};
  for (int64_t dim : {8, 40, 128}) {
    const std::vector<Tensor> in{at::randn({3, 2, 301, dim}).requires_grad_(), at::randn({3, 2, 301, dim}).requires_grad_(),
                                 at::randn({3, 2, 301, dim}).requires_grad_()};
    const Tensor w = at::randn({3, 2, 301, dim});
    const auto gpu = value_and_gradients(
        [&](const std::vector<Tensor>& t) { return edge_attention(t[0], t[1], t[2], on_gpu); },
        leaves_on(in, at::kCUDA), w);
    const auto cpu = value_and_gradients(
        [&](const std::vector<Tensor>& t) { return edge_attention_fused_cpu(t[0], t[1], t[2], on_cpu); },
        leaves_on(in, at::kCPU), w);
    expect_all_close(gpu, cpu, 1e-4, 1e-4);
  }
  const Tensor too_wide = at::randn({1, 1, 301, 129}, at::kCUDA);
  EXPECT_TRUE(mentions(error_of([&] { edge_attention_fused_cuda(too_wide, too_wide, too_wide, on_gpu); }), "128"));
}

TEST(CudaKernels, SelectiveScanMatchesTheFusedCpuLoop) {
  if (!gpu_kernels_runnable()) GTEST_SKIP() << "no CUDA build or no GPU";
  at::manual_seed(7);
  for (at::ScalarType type : {at::kDouble, at::kFloat}) {
    for (int64_t N : {16, 40}) {  // the two register bounds of the kernel (16 and 64)
      const auto opts = at::TensorOptions().dtype(type);
      const int64_t B = 3, L = 11, E = 37;
      const std::vector<Tensor> in{at::randn({B, L, E}, opts).requires_grad_(),
                                   at::softplus(at::randn({B, L, E}, opts)).detach().requires_grad_(),
                                   (-at::rand({E, N}, opts) * 3).detach().requires_grad_(),
                                   at::randn({B, L, N}, opts).requires_grad_(),
                                   at::randn({B, L, N}, opts).requires_grad_(),
                                   at::randn({E}, opts).requires_grad_()};
      const Tensor w = at::randn({B, L, E}, opts);
      const auto scan = [](const std::vector<Tensor>& t) { return selective_scan(t[0], t[1], t[2], t[3], t[4], t[5]); };
      const auto gpu = value_and_gradients(scan, leaves_on(in, at::kCUDA), w);
      const auto cpu = value_and_gradients(scan, leaves_on(in, at::kCPU), w);
      expect_all_close(gpu, cpu, type == at::kDouble ? 1e-9 : 1e-4, type == at::kDouble ? 1e-9 : 1e-4);
    }
  }
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const Tensor u = at::randn({1, 2, 3}, cuda), BC = at::randn({1, 2, 65}, cuda);
  EXPECT_FALSE(selective_scan_fused_cuda_applies(u, u, -at::ones({3, 65}, cuda), BC, BC, at::ones({3}, cuda)));
}
