#include "data/hdf5_source.hpp"

#include "data/csc_transpose.hpp"
#include "data/hdf5_read.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace exprflow {

using namespace hdf5;  // the reading helpers of data/hdf5_read.hpp

namespace {

// Entries read per hyperslab in the streaming pass at open.
constexpr int64_t kStreamChunk = 1 << 20;
// Cells are read in one run when fewer entries than this lie between them:
// only adjacent cells. Reading the cells between costs more than a second
// read (100,000-cell epoch: 15,900 cells/s with a gap of 4,096 entries,
// 18,900 with adjacent cells only; bench_hdf5_stream).
constexpr int64_t kMergeGap = 1;
// Chunk cache of each streamed dataset (data, indices): bounded memory.
constexpr size_t kChunkCacheBytes = size_t(32) << 20;

// Names made unique as R's make.unique() does ("a", "a.1", "a.2"): 10x
// feature names repeat (one gene symbol for two Ensembl ids).
std::vector<std::string> make_unique(std::vector<std::string> names) {
  std::unordered_set<std::string> taken(names.begin(), names.end()), used;
  std::unordered_map<std::string, int> next;
  for (std::string& name : names) {
    if (used.insert(name).second) continue;
    int& k = next[name];
    std::string candidate;
    do {
      candidate = name + "." + std::to_string(++k);
    } while (taken.count(candidate));
    taken.insert(candidate);
    used.insert(candidate);
    name = candidate;
  }
  return names;
}

// The dataset named by a dataframe group's _index attribute (anndata), or
// "_index"; "" when the group is absent.
std::string index_dataset(hid_t file, const std::string& group) {
  if (!exists(file, group)) return "";
  std::string index = string_attribute(file, group, "_index");
  if (index.empty()) index = "_index";
  return group + "/" + index;
}

// The encoding of a sparse group: "csr_matrix", "csc_matrix", or "" /
// "_matrix" when it says none.
std::string sparse_encoding(hid_t file, const std::string& group) {
  std::string encoding = string_attribute(file, group, "encoding-type");
  if (encoding.empty()) encoding = string_attribute(file, group, "h5sparse_format") + "_matrix";
  return encoding;
}

// A new file name in `folder` (the system's temporary folder when empty).
std::string scratch_name(const std::string& folder) {
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path where = folder.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(folder);
  const uint64_t tag = (static_cast<uint64_t>(std::random_device{}()) << 20) ^ counter++;
  return (where / ("exprflow-csr-" + std::to_string(tag) + ".h5ad")).string();
}

}  // namespace

// A file exprflow made, removed when it goes (or as soon as it is open,
// where the system allows: the open handle keeps it readable, and nothing
// is left behind if the process dies).
struct ScratchFile {
  std::string path;
  ~ScratchFile() {
    if (!path.empty()) std::remove(path.c_str());
  }
};

struct Hdf5ExpressionSource::File {
  ScratchFile scratch;  // declared first, so removed after the handles close
  Handle file;          // the user's file: genes, cells, obs
  Handle copy;          // a CSC matrix's CSR copy, when there is one
  Handle data, indices;  // indices only for sparse layouts
  std::string matrix;    // "/matrix", "/X" or "/layers/<name>": in messages
  bool dense = false;
  std::vector<float> values;       // reusable read buffers
  std::vector<int64_t> index;

  // Where the counts' data / indices / indptr are read.
  hid_t counts_file() const { return copy.valid() ? copy.get() : file.get(); }
  std::string counts_group() const { return copy.valid() ? "/X" : matrix; }
  // Rewrites the CSC group `matrix` (n_cells x genes) into a CSR copy in
  // `folder` and reads the counts from there.
  void read_through_csr_copy(const std::string& path, int64_t n_cells, const std::vector<std::string>& genes,
                             const std::string& folder) {
    scratch.path = scratch_name(folder);
    transpose_csc_to_h5ad(file.get(), path, matrix, n_cells, genes, scratch.path);
    copy = Handle(H5Fopen(scratch.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!copy.valid()) fail(path, "cannot open the CSR copy of " + matrix + " written to " + scratch.path);
    if (std::remove(scratch.path.c_str()) == 0) scratch.path.clear();
  }
};

Hdf5ExpressionSource::Hdf5ExpressionSource(std::unique_ptr<File> file, std::vector<std::string> genes)
    : ExpressionSource(std::move(genes)), file_(std::move(file)) {}

Hdf5ExpressionSource::~Hdf5ExpressionSource() { wait_for_prefetch(); }

std::unique_ptr<Hdf5ExpressionSource::File> Hdf5ExpressionSource::open_file(const std::string& path) {
  hdf5::silence();
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, "does not exist or is not an HDF5 file (.h5 / .h5ad)");
  auto file = std::make_unique<File>();
  file->file = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file->file.valid()) fail(path, "cannot be opened for reading");
  return file;
}

std::unique_ptr<Hdf5ExpressionSource> Hdf5ExpressionSource::open(const std::string& path, const std::string& layer,
                                                                 const std::string& scratch_folder) {
  auto file = open_file(path);
  const hid_t f = file->file.get();
  std::string format;
  std::vector<std::string> genes;
  int64_t n_cells = 0, n_genes = 0;
  const bool tenx = layer.empty() && exists(f, "/matrix") && object_type(f, "/matrix") == H5O_TYPE_GROUP;
  if (tenx) {
    format = "10x_h5";
    file->matrix = "/matrix";
    const std::vector<int64_t> shape = read_all<int64_t>(f, path, "/matrix/shape", H5T_NATIVE_INT64);
    if (shape.size() != 2) fail(path, "/matrix/shape must hold two numbers (genes, cells)");
    n_genes = shape[0];
    n_cells = shape[1];
    if (!exists(f, "/matrix/features/name")) {
      fail(path, "has no /matrix/features/name (gene names); files of Cell Ranger 2 and older are not read");
    }
    genes = make_unique(read_strings(f, path, "/matrix/features/name"));
  } else {
    file->matrix = layer.empty() ? "/X" : "/layers/" + layer;
    if (!exists(f, file->matrix)) {
      fail(path, layer.empty() ? "is neither a 10x Genomics .h5 (no /matrix group) nor an AnnData .h5ad (no X)"
                               : "has no layer '" + layer + "' (no " + file->matrix + ")");
    }
    const std::string var_index = index_dataset(f, "/var");
    if (var_index.empty()) fail(path, "has no var (gene names)");
    genes = read_strings(f, path, var_index);
    n_genes = static_cast<int64_t>(genes.size());
    const H5O_type_t type = object_type(f, file->matrix);
    if (type == H5O_TYPE_DATASET) {
      format = "h5ad_dense";
      file->dense = true;
      file->data = open_dataset(f, path, file->matrix, kChunkCacheBytes);
      const std::vector<hsize_t> dims = dataset_shape(file->data.get());
      if (dims.size() != 2) fail(path, file->matrix + " must be a two-dimensional (cells x genes) dataset");
      n_cells = static_cast<int64_t>(dims[0]);
      if (static_cast<int64_t>(dims[1]) != n_genes) {
        fail(path, file->matrix + " has " + std::to_string(dims[1]) + " columns but var has " +
                       std::to_string(n_genes) + " genes");
      }
    } else {
      const std::string encoding = sparse_encoding(f, file->matrix);
      if (encoding != "csr_matrix" && encoding != "csc_matrix") {
        fail(path, file->matrix + " is neither a csr_matrix / csc_matrix group nor a dense dataset");
      }
      format = encoding == "csr_matrix" ? "h5ad_csr" : "h5ad_csc";
      std::vector<int64_t> shape = integer_attribute(f, file->matrix, "shape");
      if (shape.size() != 2) fail(path, file->matrix + " has no shape attribute (cells, genes)");
      n_cells = shape[0];
      if (shape[1] != n_genes) {
        fail(path, file->matrix + " has " + std::to_string(shape[1]) + " genes but var has " + std::to_string(n_genes));
      }
      if (encoding == "csc_matrix" && n_cells > 0) {
        file->read_through_csr_copy(path, n_cells, genes, scratch_folder);
      }
    }
  }
  if (n_genes <= 0) fail(path, "holds no genes");
  return finish_open(std::move(file), std::move(genes), path, format, n_cells);
}

std::unique_ptr<Hdf5ExpressionSource> Hdf5ExpressionSource::open_matrix(const std::string& path,
                                                                        const std::string& name,
                                                                        std::vector<std::string> genes,
                                                                        const std::string& scratch_folder) {
  auto file = open_file(path);
  const hid_t f = file->file.get();
  file->matrix = name.empty() || name[0] != '/' ? "/" + name : name;
  if (!exists(f, file->matrix)) fail(path, "has no object " + file->matrix);
  const int64_t n_genes = static_cast<int64_t>(genes.size());
  if (n_genes <= 0) fail(path, "no gene names were given for " + file->matrix);
  int64_t n_cells = 0;
  std::string format;
  if (object_type(f, file->matrix) == H5O_TYPE_DATASET) {
    format = "hdf5_dense";
    file->dense = true;
    file->data = open_dataset(f, path, file->matrix, kChunkCacheBytes);
    const std::vector<hsize_t> dims = dataset_shape(file->data.get());
    if (dims.size() != 2) fail(path, file->matrix + " must be a two-dimensional (cells x genes) dataset");
    if (static_cast<int64_t>(dims[1]) != n_genes) {
      fail(path, file->matrix + " has " + std::to_string(dims[1]) + " genes per cell but " +
                     std::to_string(n_genes) + " gene names were given");
    }
    n_cells = static_cast<int64_t>(dims[0]);
  } else {
    format = "hdf5_sparse";
    for (const char* part : {"/data", "/indices", "/indptr"}) {
      if (!exists(f, file->matrix + part)) {
        fail(path, file->matrix + " is neither a 2-d dataset nor a sparse group (no " + file->matrix + part + ")");
      }
    }
    const std::string encoding = sparse_encoding(f, file->matrix);
    if (encoding == "csc_matrix") {  // AnnData's CSC: one indptr segment per gene
      const std::vector<int64_t> shape = integer_attribute(f, file->matrix, "shape");
      if (shape.size() != 2) fail(path, file->matrix + " has no shape attribute (cells, genes)");
      if (shape[1] != n_genes) {
        fail(path, file->matrix + " has " + std::to_string(shape[1]) + " genes by its shape but " +
                       std::to_string(n_genes) + " gene names were given");
      }
      if (shape[0] > 0) file->read_through_csr_copy(path, shape[0], genes, scratch_folder);
      return finish_open(std::move(file), std::move(genes), path, "hdf5_csc", shape[0]);
    }
    Handle indptr = open_dataset(f, path, file->matrix + "/indptr");
    const std::vector<hsize_t> dims = dataset_shape(indptr.get());
    if (dims.size() != 1 || dims[0] < 1) fail(path, file->matrix + "/indptr must be a non-empty 1-d dataset");
    n_cells = static_cast<int64_t>(dims[0]) - 1;
    // The group must hold one indptr segment per cell: an AnnData CSR
    // (shape attribute cells, genes) or a 10x-style CSC (shape dataset
    // genes, cells). Other layouts would read genes as cells.
    int64_t shape_genes = -1, shape_cells = -1;
    if (encoding == "csr_matrix") {
      const std::vector<int64_t> shape = integer_attribute(f, file->matrix, "shape");
      if (shape.size() == 2) shape_cells = shape[0], shape_genes = shape[1];
    } else if (exists(f, file->matrix + "/shape")) {
      const std::vector<int64_t> shape = read_all<int64_t>(f, path, file->matrix + "/shape", H5T_NATIVE_INT64);
      if (shape.size() == 2) shape_genes = shape[0], shape_cells = shape[1];
    }
    if ((shape_genes >= 0 && shape_genes != n_genes) || (shape_cells >= 0 && shape_cells != n_cells)) {
      fail(path, file->matrix + " is " + std::to_string(shape_genes) + " genes x " + std::to_string(shape_cells) +
                     " cells by its shape, but " + std::to_string(n_genes) + " gene names were given and indptr has " +
                     std::to_string(n_cells) + " cells");
    }
  }
  return finish_open(std::move(file), std::move(genes), path, format, n_cells);
}

std::unique_ptr<Hdf5ExpressionSource> Hdf5ExpressionSource::finish_open(std::unique_ptr<File> file,
                                                                        std::vector<std::string> genes,
                                                                        const std::string& path,
                                                                        const std::string& format, int64_t n_cells) {
  const hid_t f = file->file.get();
  if (n_cells <= 0) fail(path, "holds no cells");
  if (n_cells > std::numeric_limits<int>::max() - 1) fail(path, "has more cells than exprflow indexes (2^31)");
  std::unique_ptr<Hdf5ExpressionSource> source(new Hdf5ExpressionSource(std::move(file), std::move(genes)));
  source->path_ = path;
  source->format_ = format;
  source->n_cells_ = static_cast<int>(n_cells);
  File& h = *source->file_;
  if (!h.dense) {
    const hid_t counts = h.counts_file();
    const std::string group = h.counts_group();
    h.data = open_dataset(counts, path, group + "/data", kChunkCacheBytes);
    h.indices = open_dataset(counts, path, group + "/indices", kChunkCacheBytes);
    source->indptr_ = read_all<int64_t>(counts, path, group + "/indptr", H5T_NATIVE_INT64);
    const auto& p = source->indptr_;
    if (static_cast<int64_t>(p.size()) != n_cells + 1) {
      fail(path, h.matrix + "/indptr has " + std::to_string(p.size()) + " entries for " + std::to_string(n_cells) +
                     " cells (expected one more than the cells)");
    }
    const hsize_t stored = dataset_shape(h.data.get()).at(0);
    if (p.front() != 0 || !std::is_sorted(p.begin(), p.end()) || static_cast<hsize_t>(p.back()) > stored ||
        dataset_shape(h.indices.get()).at(0) != stored) {
      fail(path, h.matrix + "/indptr is not a valid offset list for data and indices");
    }
  }
  source->compute_sums_and_check();
  source->finish_construction();
  // Blocks of about one chunk: the cells a chunk holds (rows of a dense X;
  // entries / mean entries per cell of a sparse one).
  Handle layout(H5Dget_create_plist(h.data.get()), H5Pclose);
  if (H5Pget_layout(layout.get()) == H5D_CHUNKED) {
    hsize_t chunk[2] = {0, 0};
    H5Pget_chunk(layout.get(), 2, chunk);
    double cells_per_chunk = static_cast<double>(chunk[0]);
    if (!h.dense) cells_per_chunk /= std::max(1.0, static_cast<double>(source->indptr_.back()) / n_cells);
    source->block_cells_ = static_cast<int>(std::clamp(cells_per_chunk, double(kMinBlockCells), 65536.0));
    // A dense dataset chunked across genes too (R's HDF5Array chunks both
    // ways): a band of cells spans every chunk of its rows, and the cache
    // must hold a band's chunks, or each read decompresses them again.
    if (h.dense && chunk[1] > 0) {
      const double columns = std::ceil(static_cast<double>(source->n_genes()) / chunk[1]) * chunk[1];
      Handle stored(H5Dget_type(h.data.get()), H5Tclose);  // chunks are cached in the file's type
      const double band_bytes = static_cast<double>(chunk[0]) * columns * H5Tget_size(stored.get()) * 2;
      if (band_bytes > kChunkCacheBytes) {
        h.data = Handle();  // closed before it is reopened with a cache the size of two bands
        h.data = open_dataset(f, path, h.matrix, static_cast<size_t>(std::min(band_bytes, double(size_t(1) << 30))));
      }
    }
  }
  return source;
}

void Hdf5ExpressionSource::compute_sums_and_check() {
  File& h = *file_;
  const int G = n_genes();
  sums_.assign(n_cells_, 0.0);
  auto check_value = [&](float v, int64_t cell, int64_t gene) {
    if (!std::isfinite(v) || v < 0 || v != std::round(v)) {
      fail(path_, h.matrix + " holds " + std::to_string(v) + " at cell " + std::to_string(cell + 1) + ", gene " +
                      std::to_string(gene + 1) + ": exprflow needs raw counts (finite, non-negative, whole" +
                      (format_.rfind("h5ad_", 0) == 0 ? "; a layer of counts: `assay`)" : ")"));
    }
  };
  if (h.dense) {
    const int64_t rows_per_read = std::max<int64_t>(1, kStreamChunk / G);
    std::vector<float> block;
    for (int64_t lo = 0; lo < n_cells_; lo += rows_per_read) {
      const int64_t n = std::min<int64_t>(rows_per_read, n_cells_ - lo);
      block.resize(static_cast<size_t>(n) * G);
      read_range(h.data.get(), H5T_NATIVE_FLOAT, lo, n, block.data(), path_, h.matrix);
      for (int64_t r = 0; r < n; ++r) {
        double sum = 0;
        for (int g = 0; g < G; ++g) {
          const float v = block[r * G + g];
          check_value(v, lo + r, g);
          sum += v;
        }
        sums_[lo + r] = sum;
      }
    }
    return;
  }
  std::vector<float> values;
  std::vector<int64_t> index;
  int64_t cell = 0;
  const int64_t total = indptr_.back();
  for (int64_t lo = 0; lo < total; lo += kStreamChunk) {
    const int64_t n = std::min(kStreamChunk, total - lo);
    values.resize(n);
    index.resize(n);
    read_range(h.data.get(), H5T_NATIVE_FLOAT, lo, n, values.data(), path_, h.matrix + "/data");
    read_range(h.indices.get(), H5T_NATIVE_INT64, lo, n, index.data(), path_, h.matrix + "/indices");
    for (int64_t k = 0; k < n; ++k) {
      const int64_t entry = lo + k;
      while (indptr_[cell + 1] <= entry) ++cell;
      if (index[k] < 0 || index[k] >= G) {
        fail(path_, h.matrix + "/indices holds " + std::to_string(index[k]) + " for cell " + std::to_string(cell + 1) +
                        ", outside the " + std::to_string(G) + " genes");
      }
      check_value(values[k], cell, index[k]);
      sums_[cell] += values[k];
    }
  }
}

void Hdf5ExpressionSource::fill_counts(const std::vector<int>& cells, float* out) const {
  for (int c : cells) {
    if (c < 0 || c >= n_cells_) {
      throw std::out_of_range("cell index " + std::to_string(c) + " outside [0, " + std::to_string(n_cells_) + ")");
    }
  }
  wait_for_prefetch();
  if (pending_ok_ && pending_cells_ == cells) {
    std::memcpy(out, pending_counts_.data(), sizeof(float) * pending_counts_.size());
    pending_ok_ = false;
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  read_counts(cells, out);
}

void Hdf5ExpressionSource::prefetch(const std::vector<int>& cells) const {
  wait_for_prefetch();
  for (int c : cells) {
    if (c < 0 || c >= n_cells_) return;  // fill_counts() will report it
  }
  pending_cells_ = cells;
  pending_counts_.resize(static_cast<size_t>(n_genes()) * cells.size());
  pending_ = std::async(std::launch::async, [this]() {
    std::lock_guard<std::mutex> lock(mutex_);
    read_counts(pending_cells_, pending_counts_.data());
  });
}

// A failed background read is left for fill_counts() to repeat and report.
void Hdf5ExpressionSource::wait_for_prefetch() const {
  if (!pending_.valid()) return;
  try {
    pending_.get();
    pending_ok_ = true;
  } catch (...) {
    pending_ok_ = false;
  }
}

void Hdf5ExpressionSource::read_counts(const std::vector<int>& cells, float* out) const {
  const int G = n_genes();
  std::memset(out, 0, sizeof(float) * G * cells.size());
  // Rows of `out` by cell, in file order: runs of nearby cells are one read.
  std::vector<size_t> rank(cells.size());
  std::iota(rank.begin(), rank.end(), 0);
  std::sort(rank.begin(), rank.end(), [&](size_t a, size_t b) { return cells[a] < cells[b]; });
  File& h = *file_;
  size_t k = 0;
  while (k < rank.size()) {
    size_t end = k + 1;  // the run is rank[k, end)
    if (h.dense) {
      while (end < rank.size() && cells[rank[end]] - cells[rank[end - 1]] <= 1) ++end;
    } else {
      while (end < rank.size() && indptr_[cells[rank[end]]] - indptr_[cells[rank[end - 1]] + 1] < kMergeGap) ++end;
    }
    const int64_t first = cells[rank[k]], last = cells[rank[end - 1]];
    if (h.dense) {
      h.values.resize(static_cast<size_t>(last - first + 1) * G);
      read_range(h.data.get(), H5T_NATIVE_FLOAT, first, last - first + 1, h.values.data(), path_, h.matrix);
      for (size_t r = k; r < end; ++r) {
        std::memcpy(out + rank[r] * G, h.values.data() + (cells[rank[r]] - first) * G, sizeof(float) * G);
      }
    } else {
      const int64_t lo = indptr_[first], n = indptr_[last + 1] - lo;
      h.values.resize(n);
      h.index.resize(n);
      read_range(h.data.get(), H5T_NATIVE_FLOAT, lo, n, h.values.data(), path_, h.matrix + "/data");
      read_range(h.indices.get(), H5T_NATIVE_INT64, lo, n, h.index.data(), path_, h.matrix + "/indices");
      for (size_t r = k; r < end; ++r) {
        const int c = cells[rank[r]];
        float* row = out + rank[r] * G;
        for (int64_t e = indptr_[c]; e < indptr_[c + 1]; ++e) row[h.index[e - lo]] += h.values[e - lo];
      }
    }
    k = end;
  }
}

void Hdf5ExpressionSource::shuffle_epoch(std::vector<int>& order, std::mt19937_64& rng) const {
  // Blocks of block_cells() cells in file order, the blocks in a seeded random
  // order, then the cells of every kBlocksPerBuffer consecutive blocks
  // shuffled together: a minibatch draws from a few stretches of the file.
  std::sort(order.begin(), order.end());
  const size_t block = static_cast<size_t>(block_cells_);
  const size_t n_blocks = (order.size() + block - 1) / block;
  std::vector<size_t> blocks(n_blocks);
  std::iota(blocks.begin(), blocks.end(), 0);
  std::shuffle(blocks.begin(), blocks.end(), rng);
  std::vector<int> shuffled;
  shuffled.reserve(order.size());
  for (size_t b = 0; b < n_blocks; ++b) {
    const size_t lo = blocks[b] * block, hi = std::min(order.size(), lo + block);
    shuffled.insert(shuffled.end(), order.begin() + lo, order.begin() + hi);
  }
  const size_t buffer = block * kBlocksPerBuffer;
  for (size_t lo = 0; lo < shuffled.size(); lo += buffer) {
    std::shuffle(shuffled.begin() + lo, shuffled.begin() + std::min(shuffled.size(), lo + buffer), rng);
  }
  order.swap(shuffled);
}

std::vector<std::string> Hdf5ExpressionSource::cell_names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const hid_t f = file_->file.get();
  std::vector<std::string> names;
  if (format_ == "10x_h5") {
    names = read_strings(f, path_, "/matrix/barcodes");
  } else if (format_.rfind("hdf5_", 0) == 0) {
    return {};  // open_matrix(): the caller holds the names
  } else {
    const std::string obs_index = index_dataset(f, "/obs");
    if (obs_index.empty() || !exists(f, obs_index)) return {};
    names = read_strings(f, path_, obs_index);
  }
  if (static_cast<int>(names.size()) != n_cells_) {
    fail(path_, "has " + std::to_string(names.size()) + " cell names for " + std::to_string(n_cells_) + " cells");
  }
  return names;
}

std::vector<ObsColumn> Hdf5ExpressionSource::obs_columns() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const hid_t f = file_->file.get();
  std::vector<ObsColumn> out;
  if (format_.rfind("h5ad_", 0) != 0 || !exists(f, "/obs")) return out;
  std::vector<std::string> order = strings_attribute(f, "/obs", "column-order");
  const std::string index = string_attribute(f, "/obs", "_index");
  for (const std::string& name : order) {
    if (name == index) continue;
    ObsColumn column;
    column.name = name;
    const std::string where = "/obs/" + name;
    if (!exists(f, where)) fail(path_, "obs lists column '" + name + "' but has no " + where);
    const H5O_type_t type = object_type(f, where);
    column.encoding = string_attribute(f, where, "encoding-type");
    if (type == H5O_TYPE_GROUP && (column.encoding == "categorical" || exists(f, where + "/codes"))) {
      column.encoding = "categorical";
      const std::vector<std::string> categories = read_strings(f, path_, where + "/categories");
      const std::vector<int64_t> codes = read_all<int64_t>(f, path_, where + "/codes", H5T_NATIVE_INT64);
      column.labels.resize(codes.size());
      column.missing.resize(codes.size());
      for (size_t k = 0; k < codes.size(); ++k) {
        if (codes[k] < 0) {
          column.missing[k] = true;
        } else if (codes[k] < static_cast<int64_t>(categories.size())) {
          column.labels[k] = categories[codes[k]];
        } else {
          fail(path_, where + "/codes holds " + std::to_string(codes[k]) + ", beyond its " +
                          std::to_string(categories.size()) + " categories");
        }
      }
    } else if (type == H5O_TYPE_DATASET) {
      Handle d = open_dataset(f, path_, where);
      Handle dtype(H5Dget_type(d.get()), H5Tclose);
      const H5T_class_t kind = H5Tget_class(dtype.get());
      if (kind == H5T_STRING) {
        column.labels = read_strings(f, path_, where);
        column.missing.assign(column.labels.size(), false);
      } else if (kind == H5T_INTEGER || kind == H5T_FLOAT) {
        column.numeric = true;
        column.numbers = read_all<double>(f, path_, where, H5T_NATIVE_DOUBLE);
      } else if (kind == H5T_ENUM && H5Tget_size(dtype.get()) == 1) {
        // h5py writes numpy booleans as an enum of int8 (FALSE 0, TRUE 1).
        column.numeric = column.logical = true;
        Handle native(H5Tget_native_type(dtype.get(), H5T_DIR_ASCEND), H5Tclose);
        const std::vector<int8_t> flags = read_all<int8_t>(f, path_, where, native.get());
        column.numbers.assign(flags.begin(), flags.end());
      } else {
        column.supported = false;
      }
    } else {
      column.supported = false;  // nullable integer / boolean groups and others
    }
    const size_t n = column.numeric ? column.numbers.size() : column.labels.size();
    if (column.supported && static_cast<int>(n) != n_cells_) {
      fail(path_, where + " has " + std::to_string(n) + " values for " + std::to_string(n_cells_) + " cells");
    }
    out.push_back(std::move(column));
  }
  return out;
}

}  // namespace exprflow
