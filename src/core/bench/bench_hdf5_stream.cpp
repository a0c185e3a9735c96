// Training data streamed from an .h5ad file against the same counts in
// memory: one epoch of log-normalised minibatches (the data path of every
// training step, with the next minibatch prefetched as the trainer does),
// cells/s and the process's peak resident memory. Run each
// mode in its own process so that each peak is its own:
//
//   bench_hdf5_stream --mode write  --cells 1000000 --genes 2000 --file /tmp/cells.h5ad
//   bench_hdf5_stream --mode write-csc --cells 1000000 --genes 2000 --file /tmp/csc.h5ad
//                     (the same counts as a csc_matrix X: one column per gene; `stream` of
//                     it times the out-of-core CSR copy in "opened in")
//   bench_hdf5_stream --mode stream --file /tmp/cells.h5ad      (block-shuffled epoch; --prefetch off;
//                                                               --epochs N prints each epoch's peak)
//   bench_hdf5_stream --mode uniform --file /tmp/cells.h5ad     (uniform order, first 20,000 cells read)
//   bench_hdf5_stream --mode memory --cells 1000000 --genes 2000 (the same counts as an in-memory CSC source)
//
// The synthetic counts are droplet-like (~10% non-zero, geometric tail),
// drawn block by block with a fixed seed, so `write` and `memory` hold the
// same cells.
#include <hdf5.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "command_line.hpp"
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

// The synthetic counts as an .h5ad whose X is a csc_matrix group (cells x
// genes, one contiguous column per gene), written with HDF5's own API,
// gzip level 4 in chunks of 2^16 entries. The matrix is gathered in memory
// first: this mode's own peak does not matter.
void write_csc(const std::string& file, int cells, int genes, std::mt19937_64& rng) {
  std::vector<std::vector<int32_t>> column_cells(genes);
  std::vector<std::vector<float>> column_values(genes);
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<float> values;
  for (int lo = 0; lo < cells; lo += kBlock) {
    const int n = std::min(kBlock, cells - lo);
    draw_block(rng, n, genes, indptr, indices, values);
    for (int c = 0; c < n; ++c) {
      for (int64_t k = indptr[c]; k < indptr[c + 1]; ++k) {
        column_cells[indices[k]].push_back(lo + c);
        column_values[indices[k]].push_back(values[k]);
      }
    }
  }
  // obs and var (and the other groups anndata expects) from the package's
  // writer, with an X of no entries that is then replaced.
  std::vector<std::string> names(cells);
  for (int c = 0; c < cells; ++c) names[c] = "cell" + std::to_string(c);
  write_h5ad(file, H5adContent{gene_names(genes), names, std::vector<int64_t>(cells + 1, 0), {}, {}, {}});
  const hid_t h = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(h, "X", H5P_DEFAULT);
  const hid_t x = H5Gcreate2(h, "X", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t scalar = H5Screate(H5S_SCALAR);
  for (const auto& [name, value] : {std::pair<const char*, std::string>{"encoding-type", "csc_matrix"},
                                    std::pair<const char*, std::string>{"encoding-version", "0.1.0"}}) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, value.size());
    const hid_t a = H5Acreate2(x, name, type, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, value.c_str());
    H5Aclose(a);
    H5Tclose(type);
  }
  H5Sclose(scalar);
  const hsize_t two = 2;
  const int64_t shape[2] = {cells, genes};
  const hid_t shape_space = H5Screate_simple(1, &two, nullptr);
  const hid_t a = H5Acreate2(x, "shape", H5T_NATIVE_INT64, shape_space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, shape);
  H5Aclose(a);
  H5Sclose(shape_space);
  std::vector<int64_t> offsets{0};
  for (const auto& column : column_cells) offsets.push_back(offsets.back() + static_cast<int64_t>(column.size()));
  auto dataset = [&](const char* name, hid_t type, hsize_t n, auto fill) {
    const hsize_t chunk = std::max<hsize_t>(1, std::min<hsize_t>(n, 1 << 16));
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(properties, 1, &chunk);
    H5Pset_deflate(properties, 4);
    const hid_t d = H5Dcreate2(x, name, type, space, H5P_DEFAULT, properties, H5P_DEFAULT);
    fill(d);
    H5Dclose(d);
    H5Pclose(properties);
    H5Sclose(space);
  };
  auto columns = [&](const auto& per_gene, hid_t type) {  // gene by gene, into place
    return [&, type](hid_t d) {
      for (int g = 0; g < genes; ++g) {
        hsize_t at = offsets[g], n = per_gene[g].size();
        if (n == 0) continue;
        const hid_t file_space = H5Dget_space(d);
        H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &at, nullptr, &n, nullptr);
        const hid_t memory_space = H5Screate_simple(1, &n, nullptr);
        H5Dwrite(d, type, memory_space, file_space, H5P_DEFAULT, per_gene[g].data());
        H5Sclose(memory_space);
        H5Sclose(file_space);
      }
    };
  };
  dataset("data", H5T_NATIVE_FLOAT, offsets.back(), columns(column_values, H5T_NATIVE_FLOAT));
  dataset("indices", H5T_NATIVE_INT32, offsets.back(), columns(column_cells, H5T_NATIVE_INT32));
  dataset("indptr", H5T_NATIVE_INT64, offsets.size(), [&](hid_t d) {
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets.data());
  });
  H5Gclose(x);
  H5Fclose(h);
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
  int cells = 1000000, genes = 2000, batch = 128, epochs = 1;
  bool prefetch = true;
  CommandLine args(argc, argv,
                   "bench_hdf5_stream --mode write|write-csc|stream|uniform|memory [--cells N] [--genes N] "
                   "[--file PATH] [--batch N] [--prefetch on|off] [--epochs N]");
  mode = args.text("--mode", mode);
  file = args.text("--file", file);
  cells = static_cast<int>(args.number("--cells", cells));
  genes = static_cast<int>(args.number("--genes", genes));
  batch = static_cast<int>(args.number("--batch", batch));
  epochs = static_cast<int>(args.number("--epochs", epochs));
  const std::string prefetching = args.text("--prefetch", "on");
  prefetch = prefetching != "off";
  args.finish();
  if (cells < 1 || genes < 1 || batch < 1 || (prefetching != "on" && prefetching != "off") ||
      (mode != "write" && mode != "write-csc" && mode != "stream" && mode != "uniform" && mode != "memory")) {
    args.fail("");
  }
  std::mt19937_64 rng(11);
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<float> values;
  if (mode == "write-csc") {
    const auto t0 = Clock::now();
    write_csc(file, cells, genes, rng);
    std::printf("write-csc: %d cells x %d genes in %.1f s\n", cells, genes, seconds_since(t0));
    return 0;
  }
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
  double rate = epoch_rate(*source, order, batch, prefetch);
  for (int e = 1; e < epochs; ++e) {  // later epochs: whether memory keeps growing
    std::printf("epoch %d: %.0f cells/s; peak resident %.0f MB\n", e, rate, peak_resident_mb());
    source->shuffle_epoch(order, shuffle);
    rate = epoch_rate(*source, order, batch, prefetch);
  }
  std::printf("%s%s: %d cells x %d genes; %s %.1f s; epoch of %zu cells (batch %d): %.0f cells/s; peak resident %.0f MB\n",
              mode.c_str(), prefetch || mode == "memory" ? "" : " (no prefetch)", source->n_cells(), source->n_genes(), mode == "memory" ? "built in" : "opened in",
              open_seconds, order.size(), batch, rate, peak_resident_mb());
  return 0;
}
