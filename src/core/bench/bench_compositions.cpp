// Throughput of every registered composition with its default settings:
// training cells/s (median step after a warm-up, on synthetic droplet-like
// counts) and sampling cells/s (the default sampler, 50 steps), at 2,000 and
// 20,000 genes. Latent models report their two stages apart: the count VAE
// and the flow / diffusion over its latent codes. "peak" is the process's
// peak resident memory so far: the architecture's own with --architecture.
// Compositions built on resources get synthetic ones (bench_common.hpp):
// Hallmark-like gene sets; a network of 5 edges per gene.
//
//   bench_compositions [--threads N] [--device cuda] [--batch N] [--genes N]
//                      [--architecture NAME] [--steps N] [--sample-cells N]
//                      [--malloc-default] [--no-block-cache]
//                      [--precision float32|bfloat16]
//                      [--set KEY=VALUE]...
// Large blocks are reused as the R package does (reuse_large_allocations);
// --malloc-default keeps glibc's defaults, to measure what that gains;
// --no-block-cache keeps the policy's heap but not its cache of LibTorch's
// large blocks (runtime/tensor_block_cache.hpp).
// --precision bfloat16 trains and samples with bfloat16 matrix products
// (runtime/matmul_precision.hpp).
// --set adds a model setting to the compositions' defaults, e.g.
// --architecture latent_ssm --set ssm_layer=mamba (numbers as numbers); a
// composition that has no such setting refuses it, so name one with
// --architecture.
// --sample-cells 0 skips sampling (one token per gene at 20,000 genes samples
// at well under one cell per second).
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "command_line.hpp"
#include "exprflow/api.hpp"
#include "exprflow/memory.hpp"
#include "runtime/device.hpp"
#include "runtime/tensor_block_cache.hpp"

using namespace exprflow;
using namespace exprflow::bench;

namespace {

struct Settings {
  int batch = 128;
  int steps = 6;  // timed steps per stage, after 2 warm-up steps
  int sample_cells = 256;
  std::string device = "cpu";
  std::string precision = "float32";
  Options model_settings;  // --set
};

// "key=value" into options: a number when all of value parses as one.
bool add_setting(const char* text, Options& options) {
  const char* eq = std::strchr(text, '=');
  if (!eq || eq == text) return false;
  const std::string key(text, eq), value(eq + 1);
  char* end = nullptr;
  const double number = std::strtod(value.c_str(), &end);
  if (!value.empty() && end && *end == '\0') {
    options.set(key, number);
  } else {
    options.set(key, value);
  }
  return true;
}

void run(const std::string& architecture, long genes, const Settings& s) {
  auto data = synthetic_counts(genes, s.batch * (s.steps + 2), 7);
  Options spec = s.model_settings;
  spec.set("architecture", architecture).set("device", s.device);
  auto model = GenerativeModel::create(spec, data->genes(), {}, synthetic_resources(architecture, genes, 11));
  const bool two_stage = GenerativeModel::default_train_options(architecture).has("vae_epochs");
  const bool generative = !model->spec().text("objective", "").empty();

  Options train;
  train.set("epochs", 1.0).set("batch_size", double(s.batch)).set("validation_fraction", 0.0).set("patience", 0.0);
  train.set("precision", s.precision);
  if (two_stage) train.set("vae_epochs", 1.0).set("vae_batch_size", double(s.batch));
  const std::map<std::string, double> steps = median_step_seconds(*model, *data, train);
  const auto stage_step = [&steps](const std::string& stage) {
    const auto it = steps.find(stage);
    return it == steps.end() ? NAN : it->second;
  };
  const double vae_step = two_stage ? stage_step("vae") : NAN;
  const double step = two_stage ? stage_step("latent") : stage_step(steps.count("vae") ? "vae" : "model");

  double sample_seconds = NAN;
  if (s.sample_cells > 0) {
    Options sample;
    sample.set("steps", 50.0).set("batch_size", double(s.sample_cells)).set("precision", s.precision);
    model->generate(std::vector<int>(8, -1), sample);  // warm-up
    const auto t0 = Clock::now();
    model->generate(std::vector<int>(s.sample_cells, -1), sample);
    sample_seconds = seconds_since(t0);
  }

  char vae_text[64] = "";
  if (!std::isnan(vae_step)) std::snprintf(vae_text, sizeof vae_text, "vae %8.1f cells/s", s.batch / vae_step);
  const std::string objective = model->spec().text("objective", "-");
  std::printf("%-14s %-5s %6ld genes %7.2fM params | train %8.1f cells/s %-20s | %s %8.1f cells/s | peak %.0f MB\n",
              architecture.c_str(), objective.c_str(), genes, model->parameter_count() / 1e6,
              std::isnan(step) ? 0.0 : s.batch / step, vae_text,
              generative ? "sample-50" : "prior    ", s.sample_cells / sample_seconds, peak_resident_mb());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  int threads = 1;
  long only_genes = 0;
  std::string only;
  bool reuse = true;
  CommandLine args(argc, argv,
                   "bench_compositions [--architecture NAME] [--genes N] [--batch N] [--steps N] [--sample-cells N] "
                   "[--threads N] [--device cpu|cuda] [--precision float32|bfloat16] [--malloc-default] [--no-block-cache] "
                   "[--set KEY=VALUE ...]");
  threads = static_cast<int>(args.number("--threads", threads));
  s.device = args.text("--device", s.device);
  s.batch = static_cast<int>(args.number("--batch", s.batch));
  s.steps = static_cast<int>(args.number("--steps", s.steps));
  s.sample_cells = static_cast<int>(args.number("--sample-cells", s.sample_cells));
  only_genes = args.number("--genes", only_genes);
  only = args.text("--architecture", only);
  reuse = !args.has("--malloc-default");
  const bool block_cache = !args.has("--no-block-cache");
  s.precision = args.text("--precision", s.precision);
  for (const std::string& setting : args.texts("--set")) {
    if (!add_setting(setting.c_str(), s.model_settings)) args.fail("--set takes KEY=VALUE, got '" + setting + "'");
  }
  args.finish();
  if (s.batch < 1 || s.steps < 1 || threads < 1 || only_genes < 0 || s.sample_cells < 0) {
    std::fprintf(stderr, "--batch, --steps, --threads, --genes and --sample-cells must be positive\n");
    return 2;
  }
  const std::vector<std::string> names = GenerativeModel::architectures();
  if (!only.empty() && std::find(names.begin(), names.end(), only) == names.end()) {
    std::fprintf(stderr, "unknown --architecture '%s'\n", only.c_str());
    return 2;
  }
  set_torch_threads(threads);
  if (reuse) reuse_large_allocations(true);
  if (!block_cache) keep_tensor_blocks(false);
  const RuntimeInfo info = runtime_info();
  std::printf("LibTorch %s, %d torch thread(s), BLAS %s (%s kernels), batch %d, device %s, malloc %s, "
              "matrix products %s\n",
              info.torch_version.c_str(), info.torch_threads, info.blas.c_str(),
              info.blas_core.empty() ? "?" : info.blas_core.c_str(), s.batch, s.device.c_str(),
              !large_allocations_reused() ? "glibc defaults"
              : block_cache               ? "reusing large blocks, tensor block cache"
                                          : "reusing large blocks, no tensor block cache",
              s.precision.c_str());
  std::printf("fp32 mm peak: %.1f GFLOP/s\n", mm_gflops(s.device == "cuda" ? 8192 : 2048, 5, parse_device(s.device)));
  const std::vector<long> gene_counts = only_genes > 0 ? std::vector<long>{only_genes} : std::vector<long>{2000, 20000};
  for (long genes : gene_counts) {
    for (const std::string& name : names) {
      if (only.empty() || name == only) run(name, genes, s);
    }
  }
  if (large_allocations_reused() && block_cache) {
    const TensorBlockCacheCounts c = tensor_block_cache_counts();
    std::printf("tensor block cache: %llu blocks reused (%llu of a larger class), %llu allocated; "
                "at most %.0f MB kept and in use\n",
                static_cast<unsigned long long>(c.reused), static_cast<unsigned long long>(c.reused_larger),
                static_cast<unsigned long long>(c.allocated), c.peak_bytes / 1e6);
  }
  return 0;
}
