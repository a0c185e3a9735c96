// Training data streamed from an .h5ad file against the same counts in
// memory: one epoch of log-normalised minibatches (the data path of every
// training step, with the next minibatch prefetched as the trainer does),
// cells/s and the process's peak resident memory. Run each
// mode in its own process so that each peak is its own:
//
//   bench_hdf5_stream --mode write  --cells 1000000 --genes 2000 --file /tmp/cells.h5ad
//   bench_hdf5_stream --mode stream --file /tmp/cells.h5ad      (block-shuffled epoch; --prefetch off)
//   bench_hdf5_stream --mode uniform --file /tmp/cells.h5ad     (uniform order, first 20,000 cells read)
//   bench_hdf5_stream --mode memory --cells 1000000 --genes 2000 (the same counts as an in-memory CSC source)
//
// The synthetic counts are droplet-like (~10% non-zero, geometric tail),
// drawn block by block with a fixed seed, so `write` and `memory` hold the
// same cells.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "data/h5ad_writer.hpp"
#include "data/hdf5_source.hpp"

using namespace exprflow;
using namespace exprflow::bench;

namespace {

constexpr int kBlock = 10000;  // cells drawn (and written) at a time

// Cells [lo, lo + n) of the synthetic counts, CSR (cells x genes).
void draw_block(std::mt19937_64& rng, int n, int genes, std::vector<int64_t>& indptr, std::vector<int32_t>& indices,
                std::vector<float>& data) {
  std::uniform_real_distribution<double> u(0, 1);
  std::geometric_distribution<int> gap(0.1);
  indptr.assign(1, 0);
  indices.clear();
  data.clear();
  for (int c = 0; c < n; ++c) {
    for (int g = gap(rng); g < genes; g += 1 + gap(rng)) {
      indices.push_back(g);
      data.push_back(static_cast<float>(1 + std::floor(-3 * std::log(u(rng) + 1e-12))));
    }
    if (indptr.back() == static_cast<int64_t>(indices.size())) {  // every cell has a count
      indices.push_back(c % genes);
      data.push_back(1.0f);
    }
    indptr.push_back(static_cast<int64_t>(indices.size()));
  }
}

std::vector<std::string> gene_names(int genes) {
  std::vector<std::string> names(genes);
  for (int g = 0; g < genes; ++g) names[g] = "gene" + std::to_string(g);
  return names;
}

// One epoch of minibatches in `order`; returns cells/s.
double epoch_rate(const ExpressionSource& data, const std::vector<int>& order, int batch, bool prefetch) {
  std::vector<float> buffer(static_cast<size_t>(batch) * data.n_genes());
  const auto t0 = Clock::now();
  for (size_t lo = 0; lo < order.size(); lo += batch) {
    const size_t hi = std::min(order.size(), lo + batch);
    const std::vector<int> cells(order.begin() + lo, order.begin() + hi);
    // As the trainer does: the next minibatch is read while this one is used.
    if (prefetch && hi < order.size()) data.prefetch(std::vector<int>(order.begin() + hi, order.begin() + std::min(order.size(), hi + batch)));
    data.fill_log_normalised(cells, buffer.data());
  }
  return order.size() / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode, file = "/tmp/exprflow_bench.h5ad";
  int cells = 1000000, genes = 2000, batch = 128;
  bool prefetch = true;
  for (int a = 1; a + 1 < argc; a += 2) {
    if (!std::strcmp(argv[a], "--mode")) mode = argv[a + 1];
    else if (!std::strcmp(argv[a], "--file")) file = argv[a + 1];
    else if (!std::strcmp(argv[a], "--cells")) cells = std::atoi(argv[a + 1]);
    else if (!std::strcmp(argv[a], "--genes")) genes = std::atoi(argv[a + 1]);
    else if (!std::strcmp(argv[a], "--batch")) batch = std::atoi(argv[a + 1]);
    else if (!std::strcmp(argv[a], "--prefetch")) prefetch = std::strcmp(argv[a + 1], "off") != 0;
  }
  if (cells < 1 || genes < 1 || batch < 1 ||
      (mode != "write" && mode != "stream" && mode != "uniform" && mode != "memory")) {
    std::fprintf(stderr, "usage: bench_hdf5_stream --mode write|stream|uniform|memory [--cells N] [--genes N] "
                         "[--file PATH] [--batch N] [--prefetch on|off]\n");
    return 2;
  }
  std::mt19937_64 rng(11);
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<float> values;
  if (mode == "write") {
    const auto t0 = Clock::now();
    H5adWriter writer(file, gene_names(genes), 1024);
    for (int lo = 0; lo < cells; lo += kBlock) {
      const int n = std::min(kBlock, cells - lo);
      draw_block(rng, n, genes, indptr, indices, values);
      std::vector<std::string> names(n);
      for (int c = 0; c < n; ++c) names[c] = "cell" + std::to_string(lo + c);
      writer.append(names, indptr, indices, values);
    }
    writer.finish();
    std::printf("write: %d cells x %d genes in %.1f s, peak resident %.0f MB\n", cells, genes, seconds_since(t0),
                peak_resident_mb());
    return 0;
  }
  std::unique_ptr<ExpressionSource> source;
  const auto t0 = Clock::now();
  if (mode == "memory") {
    std::vector<int> p{0}, i;
    std::vector<double> x;
    for (int lo = 0; lo < cells; lo += kBlock) {
      draw_block(rng, std::min(kBlock, cells - lo), genes, indptr, indices, values);
      for (size_t k = 1; k < indptr.size(); ++k) p.push_back(static_cast<int>(p.back() + indptr[k] - indptr[k - 1]));
      i.insert(i.end(), indices.begin(), indices.end());
      x.insert(x.end(), values.begin(), values.end());
    }
    source = std::make_unique<CscExpressionSource>(gene_names(genes), cells, p.data(), i.data(), x.data());
  } else {
    source = Hdf5ExpressionSource::open(file);
  }
  const double open_seconds = seconds_since(t0);
  std::vector<int> order(source->n_cells());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 shuffle(1);
  if (mode == "uniform") {
    std::shuffle(order.begin(), order.end(), shuffle);
    order.resize(std::min<size_t>(order.size(), 20000));
  } else {
    source->shuffle_epoch(order, shuffle);  // block shuffle for the file, uniform in memory
  }
  const double rate = epoch_rate(*source, order, batch, prefetch);
  std::printf("%s%s: %d cells x %d genes; %s %.1f s; epoch of %zu cells (batch %d): %.0f cells/s; peak resident %.0f MB\n",
              mode.c_str(), prefetch || mode == "memory" ? "" : " (no prefetch)", source->n_cells(), source->n_genes(), mode == "memory" ? "built in" : "opened in",
              open_seconds, order.size(), batch, rate, peak_resident_mb());
  return 0;
}
