// What the benchmarks share: a synthetic droplet-like count matrix, medians,
// step timing through the trainer's callbacks, and the matrix-product peak
// the achieved rates are compared with. Header-only: each bench/*.cpp is its
// own executable.
#pragma once

#include <ATen/ATen.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/expression_source.hpp"
#include "exprflow/api.hpp"
#include "models/compositions.hpp"

namespace exprflow::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The process's peak resident memory so far, in MB (Linux reports kB).
inline double peak_resident_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Matrix-product GFLOP/s in `type` (n^3, median of `reps`); item() waits for a GPU.
inline double mm_gflops(int n, int reps, const at::Device& device, at::ScalarType type = at::kFloat) {
  const auto options = at::TensorOptions().dtype(type).device(device);
  at::Tensor a = at::randn({n, n}, options), b = at::randn({n, n}, options);
  at::mm(a, b).sum().item<double>();  // warm-up
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    at::Tensor c = at::mm(a, b);
    c[0][0].item<double>();
    times.push_back(seconds_since(t0));
  }
  return 2.0 * n * n * double(n) / median(times) / 1e9;
}

// ~10% non-zero counts with a geometric-like tail, as in droplet data.
inline std::unique_ptr<CscExpressionSource> synthetic_counts(long genes, int cells, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int> p{0}, i;
  std::vector<double> x;
  for (int c = 0; c < cells; ++c) {
    for (long g = 0; g < genes; ++g) {
      if (u(rng) < 0.1) {
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

// Trains `model` once with `train` and returns, per training stage ("model"
// for one-stage models; "vae" and "latent" for latent models), the median
// seconds per optimiser step after `warmup` steps of that stage.
// A random regulatory network: `edges` (regulator, target) pairs, regulators
// drawn from the first 10% of the genes (transcription factors are few).
inline NamedTensor synthetic_grn(long genes, long edges, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<long> regulator(0, std::max(1L, genes / 10) - 1), target(0, genes - 1);
  NamedTensor grn{{edges, 2}, std::vector<float>(static_cast<size_t>(2 * edges)), {}, {"regulator", "target"}};
  for (long e = 0; e < edges; ++e) {
    grn.values[2 * e] = static_cast<float>(regulator(rng));
    grn.values[2 * e + 1] = static_cast<float>(target(rng));
  }
  return grn;
}

// Gene sets shaped like MSigDB Hallmark on 2,000 PBMC3k genes (44 sets of
// about 34 member genes, 40% of the genes in some set, the rest in none),
// drawn with a seed; for compositions that need the resource "gene_sets".
inline Resources synthetic_resources(const std::string& architecture, long genes, uint64_t seed,
                                     long edges_per_gene = 5) {
  Resources r;
  const std::vector<std::string> needs = composition(architecture).resources;
  if (std::find(needs.begin(), needs.end(), "grn") != needs.end()) r["grn"] = synthetic_grn(genes, genes * edges_per_gene, seed);
  if (std::find(needs.begin(), needs.end(), "gene_sets") == needs.end()) return r;
  const long sets = 44, covered = std::max(1L, genes * 2 / 5), per_set = std::max(1L, covered * 15 / 8 / sets);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<long> pick(0, covered - 1);
  NamedTensor member{{sets, genes}, std::vector<float>(static_cast<size_t>(sets * genes), 0.0f), {}, {}};
  for (long s = 0; s < sets; ++s) {
    for (long k = 0; k < per_set; ++k) member.values[static_cast<size_t>(s * genes + pick(rng))] = 1.0f;
  }
  r["gene_sets"] = std::move(member);
  return r;
}

inline std::map<std::string, double> median_step_seconds(GenerativeModel& model, const ExpressionSource& data,
                                                         const Options& train, size_t warmup = 2) {
  std::map<std::string, std::vector<double>> steps;
  std::string stage = "model";
  auto last = Clock::now();
  TrainCallbacks callbacks;
  callbacks.on_stage = [&](const std::string& name) {
    stage = name;
    last = Clock::now();
  };
  callbacks.on_step = [&](long, long, double) {
    const auto now = Clock::now();
    steps[stage].push_back(std::chrono::duration<double>(now - last).count());
    last = now;
    return true;
  };
  model.train(data, {}, train, callbacks);
  std::map<std::string, double> out;
  for (auto& [name, times] : steps) {
    if (times.size() > warmup) times.erase(times.begin(), times.begin() + static_cast<long>(warmup));
    out[name] = median(times);
  }
  return out;
}

}  // namespace exprflow::bench
