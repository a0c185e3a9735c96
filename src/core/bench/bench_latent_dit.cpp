// Throughput of the latent-token DiT: training (cells/s, achieved GFLOP/s)
// and DDIM sampling (cells/s), for the default and a small model on 2,000 and
// 20,000 genes, next to the machine's measured sgemm GFLOP/s.
//
//   bench_latent_dit [--threads N] [--quick] [--device cuda] [--batch N]
//
// With --device cuda the models train and sample on the GPU and the matrix-
// product peak is the GPU's fp32 one (8192^3); steps are timed between the
// trainer's per-step loss reads, which wait for the GPU.
//
// Training runs the real path (GenerativeModel::train on a synthetic sparse
// source: densify, normalise, forward, backward, AdamW, EMA); the step time is
// the median over steps after a warm-up. FLOPs are counted analytically from
// the matrix products (2 per multiply-add; backward = 2x forward).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "data/expression_source.hpp"
#include "exprflow/api.hpp"
#include "runtime/device.hpp"

using namespace exprflow;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double sgemm_gflops(int n, int reps, const at::Device& device) {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor a = at::randn({n, n}, options), b = at::randn({n, n}, options);
  at::mm(a, b).sum().item<float>();  // warm-up; item() waits for a GPU
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    at::Tensor c = at::mm(a, b);
    c[0][0].item<float>();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 2.0 * n * n * double(n) / median(times) / 1e9;
}

struct Config {
  const char* name;
  long tokens, dim, layers, heads, hidden;
};

// Multiply-adds of one forward pass for one cell.
double forward_macs(const Config& c, long genes) {
  const double m = c.tokens, d = c.dim, h = c.hidden;
  double macs = genes * h + h * m * d;                           // encoder
  macs += 256 * d + d * d;                                       // timestep MLP
  macs += c.layers * (m * (3 * d * d + d * d + 8 * d * d)        // qkv, proj, MLP
                      + 2 * m * m * d                             // QK^T and AV
                      + 6 * d * d);                               // adaLN modulation
  macs += 2 * d * d + m * d * h + h * 2 * genes;                  // final adaLN, decoder
  return macs;
}

std::unique_ptr<CscExpressionSource> synthetic_counts(long genes, int cells, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int> p{0}, i;
  std::vector<double> x;
  for (int c = 0; c < cells; ++c) {
    for (long g = 0; g < genes; ++g) {
      if (u(rng) < 0.1) {  // ~10% non-zero, as in droplet data
        i.push_back(static_cast<int>(g));
        x.push_back(1 + std::floor(-3 * std::log(u(rng) + 1e-12)));
      }
    }
    p.push_back(static_cast<int>(i.size()));
  }
  std::vector<std::string> names(genes);
  for (long g = 0; g < genes; ++g) names[g] = "gene" + std::to_string(g);
  return std::make_unique<CscExpressionSource>(names, cells, p.data(), i.data(), x.data());
}

void run(const Config& c, long genes, int batch, int steps, int sample_cells, double peak,
         const std::string& device) {
  auto data = synthetic_counts(genes, batch * (steps + 2), 42);
  Options spec;
  spec.set("architecture", "latent_tokens").set("n_tokens", double(c.tokens)).set("token_dim", double(c.dim))
      .set("n_layers", double(c.layers)).set("n_heads", double(c.heads)).set("hidden", double(c.hidden))
      .set("device", device);
  auto model = GenerativeModel::create(spec, data->genes(), {});

  std::vector<double> step_seconds;
  auto last = Clock::now();
  TrainCallbacks callbacks;
  callbacks.on_step = [&](long, long, double) {
    const auto now = Clock::now();
    step_seconds.push_back(std::chrono::duration<double>(now - last).count());
    last = now;
    return true;
  };
  Options train;
  train.set("epochs", 1.0).set("batch_size", double(batch)).set("validation_fraction", 0.0).set("patience", 0.0);
  last = Clock::now();
  model->train(*data, {}, train, callbacks);
  step_seconds.erase(step_seconds.begin(), step_seconds.begin() + 2);  // warm-up steps
  const double step = median(step_seconds);
  const double train_gflops = 3 * 2 * forward_macs(c, genes) * batch / step / 1e9;

  Options sample;
  sample.set("steps", 50.0).set("batch_size", double(sample_cells));
  model->generate(std::vector<int>(8, -1), sample);  // warm-up
  const auto t0 = Clock::now();
  model->generate(std::vector<int>(sample_cells, -1), sample);
  const double sample_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  std::printf("%-8s %6ld genes %6.1fM params | train: %7.1f cells/s (%.3f s/step of %d, %5.1f GFLOP/s = %4.0f%% of mm)"
              " | DDIM-50: %7.1f cells/s\n",
              c.name, genes, model->parameter_count() / 1e6, batch / step, step, batch, train_gflops,
              100 * train_gflops / peak, sample_cells / sample_seconds);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, batch = 128;
  bool quick = false;
  std::string device = "cpu";
  for (int a = 1; a < argc; ++a) {
    if (!std::strcmp(argv[a], "--threads") && a + 1 < argc) threads = std::atoi(argv[++a]);
    if (!std::strcmp(argv[a], "--batch") && a + 1 < argc) batch = std::atoi(argv[++a]);
    if (!std::strcmp(argv[a], "--device") && a + 1 < argc) device = argv[++a];
    if (!std::strcmp(argv[a], "--quick")) quick = true;
  }
  const bool gpu = device == "cuda";
  set_torch_threads(threads);
  const RuntimeInfo info = runtime_info();
  std::printf("LibTorch %s, %d torch thread(s), BLAS %s\n", info.torch_version.c_str(), info.torch_threads,
              info.blas.c_str());
  const int n = gpu ? 8192 : 2048;
  const double peak = sgemm_gflops(n, 7, parse_device(device));
  std::printf("%s fp32 mm %d^3: %.1f GFLOP/s (median of 7)\n", device.c_str(), n, peak);

  const Config small{"small", 16, 64, 2, 4, 512};
  const Config full{"default", 64, 256, 8, 8, 2048};
  const int steps = quick ? 4 : 8;
  for (long genes : {2000L, 20000L}) {
    run(small, genes, batch, steps, 256, peak, device);
    run(full, genes, batch, quick ? 3 : 5, quick ? 8 : (gpu ? 256 : 32), peak, device);
  }
  return 0;
}
