// Throughput of the connectivity models: region pairs per second for
// training (forward, backward, AdamW, EMA) and prediction (EMA weights, no
// gradients), for every architecture with its default and a small setting
// (the bilinear baseline: its default),
// at 120 genes (DK r0.8) and 1,645 genes (DK r0.6). Medians over steps /
// repetitions after a warm-up, on 1 torch thread unless told otherwise.
//
// Each rate is given twice: from wall-clock time and from the process's CPU
// time. On a shared machine the wall-clock rate drops with the load; with one
// torch thread the CPU-time rate is what the same run gets on a quiet core.
//
//   bench_connectivity [DATA_DIR] [--threads N] [--quick] [--only ARCHITECTURE]
//
// DATA_DIR is ../shared/data/brain_ahba_hcp/dk (the default): the AHBA
// expression CSVs (all-NaN regions dropped), region centroids and HCP FC as
// the target. Without it, synthetic data of the same sizes is used.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "exprflow/api.hpp"
#include "exprflow/connectivity.hpp"

using namespace exprflow;
using exprflow::bench::CommandLine;
using Clock = std::chrono::steady_clock;

namespace {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> cells;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

struct Dataset {
  RegionData regions;
  std::vector<int> original;         // kept row -> row in the files
  std::vector<std::vector<float>> fc;  // full 82 x 82 target, empty if absent
  std::string source;
};

// DK expression (one of the two files), coordinates and FC; NaN rows dropped.
Dataset load_dk(const std::string& dir, const std::string& expression_file, int synthetic_genes) {
  Dataset d;
  auto expr = read_csv(dir + "/" + expression_file);
  auto coords = read_csv(dir + "/regions_dk82.csv");
  auto fc = read_csv(dir + "/hcp_fc_dk82_with_sctx.csv");
  if (expr.size() < 2 || coords.size() < 2) {
    // Synthetic stand-in of the same size: 80 regions.
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<float> u(0, 1);
    d.regions.n_regions = 80;
    d.regions.n_genes = synthetic_genes;
    for (int r = 0; r < 80; ++r) {
      d.original.push_back(r);
      for (int g = 0; g < synthetic_genes; ++g) d.regions.expression.push_back(u(rng));
      for (int a = 0; a < 3; ++a) d.regions.coords.push_back(100 * u(rng) - 50);
    }
    d.source = "synthetic (" + dir + " not found)";
    return d;
  }
  d.regions.n_genes = static_cast<int>(expr[0].size()) - 1;
  for (size_t r = 1; r < expr.size(); ++r) {
    std::vector<float> row;
    bool missing = false;
    for (size_t c = 1; c < expr[r].size(); ++c) {
      const float v = std::strtof(expr[r][c].c_str(), nullptr);
      if (!std::isfinite(v)) missing = true;
      row.push_back(v);
    }
    if (missing) continue;
    d.original.push_back(static_cast<int>(r - 1));
    d.regions.expression.insert(d.regions.expression.end(), row.begin(), row.end());
    for (int a = 4; a <= 6; ++a) d.regions.coords.push_back(std::strtof(coords[r][a].c_str(), nullptr));
  }
  d.regions.n_regions = static_cast<int>(d.original.size());
  for (const auto& row : fc) {
    std::vector<float> values;
    for (const auto& cell : row) values.push_back(std::strtof(cell.c_str(), nullptr));
    d.fc.push_back(values);
  }
  d.source = dir + "/" + expression_file;
  return d;
}

// Every ordered pair i != j with FC (or a random target).
RegionPairs all_pairs(const Dataset& d) {
  RegionPairs p;
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<float> u(0, 1);
  for (int i = 0; i < d.regions.n_regions; ++i) {
    for (int j = 0; j < d.regions.n_regions; ++j) {
      if (i == j) continue;
      p.i.push_back(i);
      p.j.push_back(j);
      p.target.push_back(d.fc.empty() ? u(rng) : d.fc[d.original[i]][d.original[j]]);
    }
  }
  return p;
}

GeneEmbedding random_embedding(int genes, int dim) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> n(0, 0.3f);
  GeneEmbedding e;
  e.n_genes = genes;
  e.dim = dim;
  for (int g = 0; g < genes; ++g) {
    e.has_vector.push_back(g % 10 != 9);  // 10% without a vector, as with Gene2Vec
    for (int k = 0; k < dim; ++k) e.values.push_back(n(rng));
  }
  return e;
}

RegionPairs first_pairs(const RegionPairs& all, size_t n, size_t offset = 0) {
  RegionPairs p;
  for (size_t k = 0; k < n; ++k) {
    const size_t at = (offset + k * 37) % all.i.size();  // spread over regions
    p.i.push_back(all.i[at]);
    p.j.push_back(all.j[at]);
    p.target.push_back(all.target[at]);
  }
  return p;
}

void run(const Dataset& d, const RegionPairs& pairs, const std::string& architecture, const std::string& size,
         int batch, int steps, int predict_reps) {
  Options spec;
  spec.set("architecture", architecture);
  if (size == "small") {
    spec.set("d_model", 32).set("n_layers", 2).set("n_heads", 2).set("mlp_ratio", 2).set("head_hidden", "64,32");
  }
  auto model = ConnectivityModel::create(spec, random_embedding(d.regions.n_genes, 200));

  // Training: one epoch of (steps + 1) batches; the first step is warm-up.
  const RegionPairs train = first_pairs(pairs, static_cast<size_t>(batch) * (steps + 1));
  std::vector<double> step_seconds, step_cpu;
  auto last = Clock::now();
  double last_cpu = cpu_seconds();
  TrainCallbacks callbacks;
  callbacks.on_step = [&](long, long, double) {
    const auto now = Clock::now();
    const double now_cpu = cpu_seconds();
    step_seconds.push_back(std::chrono::duration<double>(now - last).count());
    step_cpu.push_back(now_cpu - last_cpu);
    last = now;
    last_cpu = now_cpu;
    return true;
  };
  Options options;
  options.set("epochs", 1).set("batch_size", batch).set("patience", 0);
  last = Clock::now();
  last_cpu = cpu_seconds();
  model->train(d.regions, train, RegionPairs(), options, callbacks);
  step_seconds.erase(step_seconds.begin());
  step_cpu.erase(step_cpu.begin());
  const double train_rate = batch / median(step_seconds), train_cpu_rate = batch / median(step_cpu);

  // Prediction: the same batch size, median over repetitions.
  const RegionPairs test = first_pairs(pairs, static_cast<size_t>(batch) * 2, 11);
  model->predict(d.regions, first_pairs(pairs, batch), batch);  // warm-up
  std::vector<double> predict_seconds, predict_cpu;
  for (int r = 0; r < predict_reps; ++r) {
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    model->predict(d.regions, test, batch);
    predict_seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    predict_cpu.push_back(cpu_seconds() - c0);
  }
  const double predict_rate = test.i.size() / median(predict_seconds);
  const double predict_cpu_rate = test.i.size() / median(predict_cpu);
  const double epoch_pairs = static_cast<double>(pairs.i.size());
  std::printf("%-28s %-7s %4d genes %5.2fM params | batch %3d | train %8.1f pairs/s wall, %8.1f cpu"
              " (epoch of %.0f pairs: %7.1f s cpu) | predict %9.1f pairs/s wall, %9.1f cpu\n",
              architecture.c_str(), size.c_str(), d.regions.n_genes, model->parameter_count() / 1e6, batch,
              train_rate, train_cpu_rate, epoch_pairs, epoch_pairs / train_cpu_rate, predict_rate, predict_cpu_rate);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "../shared/data/brain_ahba_hcp/dk";
  int threads = 1;
  bool quick = false;
  std::string only;
  CommandLine args(argc, argv, "bench_connectivity [DK-DATA-FOLDER] [--only ARCHITECTURE] [--threads N] [--quick]");
  threads = static_cast<int>(args.number("--threads", threads));
  only = args.text("--only", only);
  quick = args.has("--quick");
  const std::vector<std::string> folders = args.positional();
  if (folders.size() > 1) args.fail("give one data folder");
  if (!folders.empty()) dir = folders.front();
  args.finish();
  set_torch_threads(threads);
  const RuntimeInfo info = runtime_info();
  std::printf("LibTorch %s, %d torch thread(s), BLAS %s\n", info.torch_version.c_str(), info.torch_threads,
              info.blas.c_str());
  const int steps = quick ? 2 : 4, reps = quick ? 2 : 3;
  for (const auto& file : {std::make_pair(std::string("ahba_expr_dk82_stable_r0.8.csv"), 120),
                           std::make_pair(std::string("ahba_expr_dk82_stable_r0.6.csv"), 1645)}) {
    const Dataset d = load_dk(dir, file.first, file.second);
    const RegionPairs pairs = all_pairs(d);
    std::printf("data: %s: %d regions x %d genes, %zu ordered pairs\n", d.source.c_str(), d.regions.n_regions,
                d.regions.n_genes, pairs.i.size());
    const bool many_genes = d.regions.n_genes > 500;
    for (const std::string architecture : ConnectivityModel::architectures()) {
      if (!only.empty() && architecture != only) continue;
      const bool chunks = architecture.rfind("self_attention_chunks", 0) == 0;
      // The bilinear baseline has no attention sizes: its default only.
      const std::vector<std::string> sizes =
          architecture == "bilinear" ? std::vector<std::string>{"default"} : std::vector<std::string>{"small", "default"};
      for (const std::string& size : sizes) {
        // Siamese models encode each distinct region of a batch once, so they
        // run at the training batch size (512); the gene-token models at 1,645
        // genes get batches that fit in memory and take seconds per step.
        const bool siamese = architecture != "cross_attention";
        int batch = siamese ? 512 : 64;
        if (many_genes && !chunks && architecture != "bilinear") {
          if (siamese) batch = size == "default" ? 8 : 16;
          else batch = size == "default" ? 2 : 8;
        }
        run(d, pairs, architecture, size, batch, steps, reps);
      }
    }
  }
  return 0;
}
