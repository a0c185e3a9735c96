// GRN attention (backbone/edge_attention.hpp): one training step of the
// attention op itself (forward + backward of q, k, v) and its peak resident
// memory, for 2,000 / 20,000 genes and 10k / 100k / 1M regulatory edges:
// the fused CPU kernel, the gather version (plain ATen), and the dense masked
// reference where its genes x genes scores fit. Each case runs in its own
// child process, so that its peak resident memory is its own.
//
//   bench_grn_attention [--threads N] [--batch B] [--heads H] [--head-dim Dh]
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backbone/edge_attention.hpp"
#include "bench_common.hpp"
#include "command_line.hpp"

using namespace exprflow;
using namespace exprflow::bench;

namespace {

struct Settings {
  int batch = 8, heads = 2, head_dim = 16, reps = 3;
};

struct Result {
  double seconds = 0, peak_mb = 0;
  bool ok = false;
};

using Attend = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const EdgeIndex&);

Attend method(const std::string& name) {
  if (name == "fused") return edge_attention_fused_cpu;
  if (name == "gather") return edge_attention_gather;
  return edge_attention_dense_reference;
}

// In the child: the median over `reps` steps after one warm-up step.
Result run_case(const std::string& name, long genes, long edges, const Settings& s) {
  const NamedTensor grn = synthetic_grn(genes, edges, 3);
  std::vector<std::pair<int64_t, int64_t>> pairs(edges);
  for (long e = 0; e < edges; ++e) pairs[e] = {static_cast<int64_t>(grn.values[2 * e]), static_cast<int64_t>(grn.values[2 * e + 1])};
  const EdgeIndex graph = EdgeIndex::of(EdgeGraph::from_pairs(pairs, genes));
  auto leaf = [&] { return at::randn({s.batch, s.heads, genes, s.head_dim}).requires_grad_(); };
  const Tensor q = leaf(), k = leaf(), v = leaf();
  const Tensor w = at::randn({s.batch, s.heads, genes, s.head_dim});
  const Attend attend = method(name);
  std::vector<double> times;
  for (int r = 0; r <= s.reps; ++r) {
    for (const Tensor& t : {q, k, v}) t.mutable_grad() = Tensor();
    const auto t0 = Clock::now();
    (attend(q, k, v, graph) * w).sum().backward();
    if (r > 0) times.push_back(seconds_since(t0));
  }
  return {median(times), peak_resident_mb(), true};
}

// Forks, runs the case in the child, reads its result back through a pipe.
Result in_child(const std::string& name, long genes, long edges, const Settings& s) {
  int fd[2];
  if (pipe(fd) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    const Result r = run_case(name, genes, edges, s);
    if (write(fd[1], &r, sizeof r) != sizeof r) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  Result r;
  const bool got = read(fd[0], &r, sizeof r) == sizeof r;
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!got) r.ok = false;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  int threads = 1;
  CommandLine args(argc, argv, "bench_grn_attention [--batch N] [--heads N] [--head-dim N] [--threads N]");
  threads = static_cast<int>(args.number("--threads", threads));
  s.batch = static_cast<int>(args.number("--batch", s.batch));
  s.heads = static_cast<int>(args.number("--heads", s.heads));
  s.head_dim = static_cast<int>(args.number("--head-dim", s.head_dim));
  args.finish();
  at::set_num_threads(threads);
  std::printf("GRN attention, forward + backward of q, k, v (batch %d, %d heads of %d; %d thread(s)); median of %d\n",
              s.batch, s.heads, s.head_dim, threads, s.reps);
  std::printf("%-7s %-9s %-8s %10s %10s %12s\n", "genes", "edges", "method", "step ms", "peak MB", "ns/edge/cell");
  for (long genes : {2000L, 20000L}) {
    for (long edges : {10000L, 100000L, 1000000L}) {
      for (const char* name : {"fused", "gather", "dense"}) {
        // Dense scores are batch x heads x genes^2 floats, several times over in the backward.
        const double dense_gb = 4.0 * s.batch * s.heads * double(genes) * genes * 4 / 1e9;
        if (!std::strcmp(name, "dense") && dense_gb > 8) {
          std::printf("%-7ld %-9ld %-8s %10s %10s %12s  (needs ~%.0f GB)\n", genes, edges, name, "-", "-", "-", dense_gb);
          continue;
        }
        const Result r = in_child(name, genes, edges, s);
        if (!r.ok) {
          std::printf("%-7ld %-9ld %-8s failed\n", genes, edges, name);
          continue;
        }
        const double per_edge = r.seconds * 1e9 / (double(edges + genes) * s.batch * s.heads);
        std::printf("%-7ld %-9ld %-8s %10.1f %10.0f %12.2f\n", genes, edges, name, r.seconds * 1e3, r.peak_mb, per_edge);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
