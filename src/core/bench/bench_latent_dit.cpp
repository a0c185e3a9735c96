// Throughput of the latent-token DiT: training (cells/s, achieved GFLOP/s)
// and DDIM sampling (cells/s), for the default and a small model on 2,000 and
// 20,000 genes, next to the machine's measured sgemm GFLOP/s.
//
//   bench_latent_dit [--threads N] [--quick] [--device cuda] [--batch N]
//                    [--config small|default] [--genes N] [--precision float32|bfloat16]
//
// --config and --genes time one configuration alone (default: both
// configurations at 2,000 and 20,000 genes).
//
// With --device cuda the models train and sample on the GPU and the matrix-
// product peak is the GPU's fp32 one (8192^3); steps are timed between the
// trainer's per-step loss reads, which wait for the GPU. --precision
// bfloat16 trains and samples with bfloat16 products
// (runtime/matmul_precision.hpp), measured against the bfloat16 peak.
//
// Training runs the real path (GenerativeModel::train on a synthetic sparse
// source: densify, normalise, forward, backward, AdamW, EMA); the step time is
// the median over steps after a warm-up. FLOPs are counted analytically from
// the matrix products (2 per multiply-add; backward = 2x forward).
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "command_line.hpp"
#include "data/expression_source.hpp"
#include "exprflow/api.hpp"
#include "runtime/device.hpp"
#include "runtime/matmul_precision.hpp"

using namespace exprflow;
using namespace exprflow::bench;

namespace {

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

void run(const Config& c, long genes, int batch, int steps, int sample_cells, double peak,
         const std::string& device, const std::string& precision) {
  auto data = synthetic_counts(genes, batch * (steps + 2), 42);
  Options spec;
  spec.set("architecture", "latent_tokens").set("n_tokens", double(c.tokens)).set("token_dim", double(c.dim))
      .set("n_layers", double(c.layers)).set("n_heads", double(c.heads)).set("hidden", double(c.hidden))
      .set("device", device);
  auto model = GenerativeModel::create(spec, data->genes(), {});

  Options train;
  train.set("epochs", 1.0).set("batch_size", double(batch)).set("validation_fraction", 0.0).set("patience", 0.0)
      .set("precision", precision);
  const double step = median_step_seconds(*model, *data, train).at("model");
  const double train_gflops = 3 * 2 * forward_macs(c, genes) * batch / step / 1e9;

  Options sample;
  sample.set("steps", 50.0).set("batch_size", double(sample_cells)).set("precision", precision);
  model->generate(std::vector<int>(8, -1), sample);  // warm-up
  const auto t0 = Clock::now();
  model->generate(std::vector<int>(sample_cells, -1), sample);
  const double sample_seconds = seconds_since(t0);

  std::printf("%-8s %6ld genes %6.1fM params | train: %7.1f cells/s (%.3f s/step of %d, %5.1f GFLOP/s = %4.0f%% of mm)"
              " | DDIM-50: %7.1f cells/s\n",
              c.name, genes, model->parameter_count() / 1e6, batch / step, step, batch, train_gflops,
              100 * train_gflops / peak, sample_cells / sample_seconds);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, batch = 128;
  long only_genes = 0;
  bool quick = false;
  std::string device = "cpu", only_config, precision = "float32";
  CommandLine args(argc, argv,
                   "bench_latent_dit [--config small|default] [--genes N] [--batch N] [--threads N] "
                   "[--device cpu|cuda] [--precision float32|bfloat16] [--quick]");
  threads = static_cast<int>(args.number("--threads", threads));
  batch = static_cast<int>(args.number("--batch", batch));
  device = args.text("--device", device);
  only_config = args.text("--config", only_config);
  only_genes = args.number("--genes", only_genes);
  precision = args.text("--precision", precision);
  quick = args.has("--quick");
  args.finish();
  if (!only_config.empty() && only_config != "small" && only_config != "default") {
    std::fprintf(stderr, "--config must be 'small' or 'default', got '%s'\n", only_config.c_str());
    return 2;
  }
  if (only_genes < 0) {
    std::fprintf(stderr, "--genes must be a positive count\n");
    return 2;
  }
  const bool gpu = device == "cuda";
  set_torch_threads(threads);
  const RuntimeInfo info = runtime_info();
  std::printf("LibTorch %s, %d torch thread(s), BLAS %s\n", info.torch_version.c_str(), info.torch_threads,
              info.blas.c_str());
  const int n = gpu ? 8192 : 2048;
  const bool bf16 = parse_matmul_precision(precision, "--precision") == MatmulPrecision::bfloat16;
  const double peak = mm_gflops(n, 7, parse_device(device), bf16 ? at::kBFloat16 : at::kFloat);
  std::printf("%s %s mm %d^3: %.1f GFLOP/s (median of 7)\n", device.c_str(), bf16 ? "bf16" : "fp32", n, peak);

  const Config small{"small", 16, 64, 2, 4, 512};
  const Config full{"default", 64, 256, 8, 8, 2048};
  const int steps = quick ? 4 : 8;
  const std::vector<long> gene_counts = only_genes > 0 ? std::vector<long>{only_genes} : std::vector<long>{2000, 20000};
  for (long genes : gene_counts) {
    if (only_config.empty() || only_config == "small") run(small, genes, batch, steps, 256, peak, device, precision);
    if (only_config.empty() || only_config == "default") {
      run(full, genes, batch, quick ? 3 : 5, quick ? 8 : (gpu ? 256 : 32), peak, device, precision);
    }
  }
  return 0;
}
