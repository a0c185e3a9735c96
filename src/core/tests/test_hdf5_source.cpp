// Streaming HDF5 sources (10x .h5, .h5ad CSR and dense) against the
// in-memory CSC source of the same counts, the .h5ad writer, block
// shuffling, and the errors bad files give.
#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data/csc_transpose.hpp"
#include "data/expression_source.hpp"
#include "data/gene_selection.hpp"
#include "data/h5ad_writer.hpp"
#include "data/hdf5_source.hpp"

using namespace exprflow;

namespace {

// Sparse counts of `genes` x `cells` (about a third non-zero) as CSC arrays.
struct Counts {
  int genes = 0, cells = 0;
  std::vector<int> p, i;
  std::vector<double> x;
  std::vector<std::string> gene_names, cell_names;
};

Counts random_counts(int genes, int cells, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> count(0, 20);
  Counts c;
  c.genes = genes;
  c.cells = cells;
  c.p.push_back(0);
  for (int cell = 0; cell < cells; ++cell) {
    for (int g = 0; g < genes; ++g) {
      if (rng() % 3 == 0 || g == cell % genes) {  // every cell has a count
        c.i.push_back(g);
        c.x.push_back(1 + count(rng));
      }
    }
    c.p.push_back(static_cast<int>(c.i.size()));
    c.cell_names.push_back("cell" + std::to_string(cell));
  }
  for (int g = 0; g < genes; ++g) c.gene_names.push_back("gene" + std::to_string(g));
  return c;
}

H5adContent content_of(const Counts& c) {
  H5adContent h;
  h.genes = c.gene_names;
  h.cells = c.cell_names;
  h.indptr.assign(c.p.begin(), c.p.end());
  h.indices.assign(c.i.begin(), c.i.end());
  h.data.assign(c.x.begin(), c.x.end());
  return h;
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "exprflow_" + std::to_string(::getpid()) + "_" + name;
}

void expect_same_cells(const ExpressionSource& streamed, const ExpressionSource& memory, const std::vector<int>& cells) {
  const int G = memory.n_genes();
  std::vector<float> a(cells.size() * G), b(cells.size() * G);
  streamed.fill_counts(cells, a.data());
  memory.fill_counts(cells, b.data());
  EXPECT_EQ(a, b);
  streamed.fill_log_normalised(cells, a.data());
  memory.fill_log_normalised(cells, b.data());
  EXPECT_EQ(a, b);
}

// Cells in an order no reader would choose: repeats, gaps, reversed runs.
std::vector<int> awkward_cells(int n_cells) {
  return {n_cells - 1, 0, 5, 4, 3, 3, 100, 101, 250, 7, n_cells / 2, 1};
}

void write_strings(hid_t parent, const char* name, const std::vector<std::string>& values) {
  const hsize_t n = values.size();
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, 16);  // fixed length, as Cell Ranger writes them
  std::vector<char> buffer(16 * n, '\0');
  for (size_t k = 0; k < n; ++k) std::copy(values[k].begin(), values[k].end(), buffer.begin() + 16 * k);
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(parent, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data());
  H5Dclose(d);
  H5Sclose(space);
  H5Tclose(type);
}

template <typename T>
void write_array(hid_t parent, const char* name, hid_t type, const std::vector<T>& values) {
  const hsize_t n = values.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(parent, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Dclose(d);
  H5Sclose(space);
}

// A Cell Ranger 3+ file: /matrix CSC genes x cells, int32 counts.
void write_10x(const std::string& path, const Counts& c, std::vector<std::string> gene_names) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t matrix = H5Gcreate2(file, "matrix", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<int32_t> data(c.x.begin(), c.x.end());
  write_array(matrix, "data", H5T_NATIVE_INT32, data);
  write_array(matrix, "indices", H5T_NATIVE_INT64, std::vector<int64_t>(c.i.begin(), c.i.end()));
  write_array(matrix, "indptr", H5T_NATIVE_INT64, std::vector<int64_t>(c.p.begin(), c.p.end()));
  write_array(matrix, "shape", H5T_NATIVE_INT32, std::vector<int32_t>{c.genes, c.cells});
  write_strings(matrix, "barcodes", c.cell_names);
  hid_t features = H5Gcreate2(matrix, "features", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  write_strings(features, "name", gene_names);
  H5Gclose(features);
  H5Gclose(matrix);
  H5Fclose(file);
}

// As anndata (h5py) writes its attributes: a variable-length UTF-8 string.
void string_attribute(hid_t object, const char* name, const std::string& value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* text = value.c_str();
  H5Awrite(a, type, &text);
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
}

// The counts as AnnData's csc_matrix X (cells x genes, one contiguous
// column per gene, whose indices are cells: int32 indices and counts, as
// scipy writes them), with obs and var from write_h5ad(). With `shuffle`,
// the cells within each column come in a random order (scipy allows
// unsorted indices).
void write_csc_h5ad(const std::string& path, const Counts& c, bool shuffle) {
  write_h5ad(path, content_of(c));
  std::vector<std::vector<std::pair<int32_t, int32_t>>> columns(c.genes);  // (cell, count) per gene
  for (int cell = 0; cell < c.cells; ++cell) {
    for (int k = c.p[cell]; k < c.p[cell + 1]; ++k) columns[c.i[k]].push_back({cell, static_cast<int32_t>(c.x[k])});
  }
  std::mt19937 rng(11);
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices, data;
  for (auto& column : columns) {
    if (shuffle) std::shuffle(column.begin(), column.end(), rng);
    for (const auto& [cell, count] : column) indices.push_back(cell), data.push_back(count);
    indptr.push_back(static_cast<int64_t>(indices.size()));
  }
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(file, "X", H5P_DEFAULT);
  hid_t x = H5Gcreate2(file, "X", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  string_attribute(x, "encoding-type", "csc_matrix");
  string_attribute(x, "encoding-version", "0.1.0");
  const hsize_t two = 2;
  const int64_t shape[2] = {c.cells, c.genes};
  hid_t space = H5Screate_simple(1, &two, nullptr);
  hid_t a = H5Acreate2(x, "shape", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, shape);
  H5Aclose(a);
  H5Sclose(space);
  write_array(x, "data", H5T_NATIVE_INT32, data);
  write_array(x, "indices", H5T_NATIVE_INT32, indices);
  write_array(x, "indptr", H5T_NATIVE_INT64, indptr);
  H5Gclose(x);
  H5Fclose(file);
}

// The counts as a dense (cells, genes) dataset stored as `file_type`.
void write_dense(hid_t file, const char* name, const Counts& c, hid_t file_type) {
  std::vector<double> dense(static_cast<size_t>(c.cells) * c.genes, 0.0);  // (cells, genes), row-major
  for (int cell = 0; cell < c.cells; ++cell) {
    for (int k = c.p[cell]; k < c.p[cell + 1]; ++k) dense[cell * c.genes + c.i[k]] = c.x[k];
  }
  const hsize_t dims[2] = {static_cast<hsize_t>(c.cells), static_cast<hsize_t>(c.genes)};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t d = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dense.data());
  H5Dclose(d);
  H5Sclose(space);
}

std::string error_of(const std::string& path, const std::string& layer = "") {
  try {
    Hdf5ExpressionSource::open(path, layer);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Hdf5Source, H5adWrittenByExprflowStreamsTheSameCellsAsMemory) {
  const Counts c = random_counts(40, 700, 1);
  const std::string path = temp_path("csr.h5ad");
  H5adContent content = content_of(c);
  H5adColumn type{"cell_type", false, {}, {"B", "T"}, std::vector<int32_t>(c.cells, 0)};
  for (int k = 0; k < c.cells; k += 3) type.codes[k] = 1;
  type.codes[5] = -1;
  H5adColumn depth{"depth", true, std::vector<double>(c.cells, 0.5), {}, {}};
  content.obs = {type, depth};
  write_h5ad(path, content, 100);

  const auto streamed = Hdf5ExpressionSource::open(path);
  const CscExpressionSource memory(c.gene_names, c.cells, c.p.data(), c.i.data(), c.x.data());
  EXPECT_EQ(streamed->format(), "h5ad_csr");
  EXPECT_EQ(streamed->n_cells(), c.cells);
  EXPECT_EQ(streamed->genes(), c.gene_names);
  EXPECT_EQ(streamed->library_sizes(), memory.library_sizes());
  EXPECT_EQ(streamed->cell_names(), c.cell_names);
  expect_same_cells(*streamed, memory, awkward_cells(c.cells));
  std::vector<int> all(c.cells);
  std::iota(all.begin(), all.end(), 0);
  expect_same_cells(*streamed, memory, all);

  // Prefetched minibatches are the same cells; a prefetch of other cells
  // is not mistaken for the request, and a bad prefetch is harmless.
  const std::vector<int> next{9, 3, 400}, other{1, 2};
  streamed->prefetch(next);
  expect_same_cells(*streamed, memory, next);
  streamed->prefetch(next);
  expect_same_cells(*streamed, memory, other);
  streamed->prefetch({c.cells + 5});
  expect_same_cells(*streamed, memory, next);
  std::vector<float> out(c.genes);
  EXPECT_THROW(streamed->fill_counts({c.cells + 5}, out.data()), std::out_of_range);

  const std::vector<ObsColumn> obs = streamed->obs_columns();
  ASSERT_EQ(obs.size(), 2u);
  EXPECT_EQ(obs[0].name, "cell_type");
  EXPECT_EQ(obs[0].encoding, "categorical");
  EXPECT_EQ(obs[0].labels[0], "T");
  EXPECT_EQ(obs[0].labels[1], "B");
  EXPECT_TRUE(obs[0].missing[5]);
  EXPECT_FALSE(obs[0].missing[4]);
  EXPECT_TRUE(obs[1].numeric);
  EXPECT_EQ(obs[1].numbers, depth.numbers);
  std::remove(path.c_str());
}

TEST(Hdf5Source, FilesWrittenBlockByBlockEqualFilesWrittenAtOnce) {
  const Counts c = random_counts(15, 333, 6);
  const std::string whole = temp_path("whole.h5ad"), blocks = temp_path("blocks.h5ad");
  write_h5ad(whole, content_of(c));
  {
    H5adWriter writer(blocks, c.gene_names, 50);
    for (int lo = 0; lo < c.cells; lo += 100) {
      const int hi = std::min(c.cells, lo + 100);
      std::vector<int64_t> indptr;
      for (int k = lo; k <= hi; ++k) indptr.push_back(c.p[k] - c.p[lo]);
      writer.append(std::vector<std::string>(c.cell_names.begin() + lo, c.cell_names.begin() + hi), indptr,
                    std::vector<int32_t>(c.i.begin() + c.p[lo], c.i.begin() + c.p[hi]),
                    std::vector<float>(c.x.begin() + c.p[lo], c.x.begin() + c.p[hi]));
    }
    EXPECT_EQ(writer.n_cells(), c.cells);
    writer.finish();
  }
  const auto a = Hdf5ExpressionSource::open(whole), b = Hdf5ExpressionSource::open(blocks);
  EXPECT_EQ(a->cell_names(), b->cell_names());
  expect_same_cells(*b, *a, awkward_cells(c.cells));
  // A writer dropped before finish() leaves nothing behind.
  const std::string dropped = temp_path("dropped.h5ad");
  { H5adWriter writer(dropped, c.gene_names); }
  EXPECT_EQ(std::fopen((dropped + ".tmp-exprflow").c_str(), "r"), nullptr);
  EXPECT_EQ(std::fopen(dropped.c_str(), "r"), nullptr);
  std::remove(whole.c_str());
  std::remove(blocks.c_str());
}

TEST(Hdf5Source, TenxFilesStreamAndRepeatedGeneNamesAreMadeUnique) {
  const Counts c = random_counts(12, 300, 2);
  const std::string path = temp_path("10x.h5");
  std::vector<std::string> names = c.gene_names;
  names[3] = names[2];  // one symbol for two features
  write_10x(path, c, names);
  const auto streamed = Hdf5ExpressionSource::open(path);
  EXPECT_EQ(streamed->format(), "10x_h5");
  EXPECT_EQ(streamed->genes()[2], "gene2");
  EXPECT_EQ(streamed->genes()[3], "gene2.1");
  EXPECT_EQ(streamed->cell_names(), c.cell_names);
  EXPECT_TRUE(streamed->obs_columns().empty());
  const CscExpressionSource memory(streamed->genes(), c.cells, c.p.data(), c.i.data(), c.x.data());
  expect_same_cells(*streamed, memory, awkward_cells(c.cells));
  EXPECT_NE(error_of(path, "counts").find("has no layer 'counts'"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Hdf5Source, DenseH5adXStreamsRowsOfCells) {
  const Counts c = random_counts(9, 260, 3);
  const std::string path = temp_path("dense.h5ad");
  write_h5ad(path, content_of(c));  // var and obs from the writer; X replaced by a dense dataset
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(file, "X", H5P_DEFAULT);
  write_dense(file, "X", c, H5T_NATIVE_DOUBLE);
  H5Fclose(file);
  const auto streamed = Hdf5ExpressionSource::open(path);
  EXPECT_EQ(streamed->format(), "h5ad_dense");
  const CscExpressionSource memory(c.gene_names, c.cells, c.p.data(), c.i.data(), c.x.data());
  EXPECT_EQ(streamed->library_sizes(), memory.library_sizes());
  expect_same_cells(*streamed, memory, awkward_cells(c.cells));
  std::remove(path.c_str());
}

// A CSC X (one column per gene) is rewritten into a CSR copy in the
// scratch folder, which is gone once the copy is open; cells then stream
// as from any CSR file. The transpose itself is checked at a budget that
// forces many passes.
TEST(Hdf5Source, CscH5adIsCopiedToCsrOutOfCoreAndStreamsTheSameCells) {
  const Counts c = random_counts(13, 310, 8);
  const std::string path = temp_path("csc.h5ad");
  write_csc_h5ad(path, c, true);
  const CscExpressionSource memory(c.gene_names, c.cells, c.p.data(), c.i.data(), c.x.data());
  const std::filesystem::path scratch = temp_path("scratch");
  std::filesystem::create_directory(scratch);
  const auto streamed = Hdf5ExpressionSource::open(path, "", scratch.string());
  EXPECT_EQ(streamed->format(), "h5ad_csc");
  EXPECT_EQ(streamed->n_cells(), c.cells);
  EXPECT_EQ(streamed->genes(), c.gene_names);
  EXPECT_EQ(streamed->cell_names(), c.cell_names);  // from the user's file, not the copy
  EXPECT_EQ(streamed->library_sizes(), memory.library_sizes());
  expect_same_cells(*streamed, memory, awkward_cells(c.cells));
  EXPECT_TRUE(std::filesystem::is_empty(scratch));

  // Budgets of 1 entry (one cell per pass), 17 and everything give the same file.
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  for (int64_t budget : {int64_t(1), int64_t(17), kCscTransposeEntries}) {
    const std::string copy = temp_path("copy.h5ad");
    transpose_csc_to_h5ad(file, path, "/X", c.cells, c.gene_names, copy, budget);
    const auto copied = Hdf5ExpressionSource::open(copy);
    EXPECT_EQ(copied->format(), "h5ad_csr");
    std::vector<int> all(c.cells);
    std::iota(all.begin(), all.end(), 0);
    expect_same_cells(*copied, memory, all);
    std::remove(copy.c_str());
  }
  // A cell index outside the cells is named with its gene.
  try {
    transpose_csc_to_h5ad(file, path, "/X", c.cells - 100, c.gene_names, temp_path("copy.h5ad"));
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("outside the 210 cells"), std::string::npos) << e.what();
  }
  H5Fclose(file);

  // The same group through open_matrix() (an H5ADMatrix of a CSC file).
  const auto matrix = Hdf5ExpressionSource::open_matrix(path, "X", c.gene_names, scratch.string());
  EXPECT_EQ(matrix->format(), "hdf5_csc");
  expect_same_cells(*matrix, memory, awkward_cells(c.cells));
  std::filesystem::remove_all(scratch);
  std::remove(path.c_str());
}

// R's HDF5Array keeps a genes x cells matrix as a (cells, genes) dataset
// under any name, and TENxMatrix / H5ADMatrix name a sparse group; the gene
// names stay in R.
TEST(Hdf5Source, OpenMatrixStreamsANamedDatasetOrSparseGroupWithTheCallersGenes) {
  const Counts c = random_counts(11, 280, 7);
  const std::string sparse_path = temp_path("group.h5"), dense_path = temp_path("assay.h5");
  write_10x(sparse_path, c, c.gene_names);
  const CscExpressionSource memory(c.gene_names, c.cells, c.p.data(), c.i.data(), c.x.data());
  const auto sparse = Hdf5ExpressionSource::open_matrix(sparse_path, "matrix", c.gene_names);
  EXPECT_EQ(sparse->format(), "hdf5_sparse");
  EXPECT_EQ(sparse->n_cells(), c.cells);
  EXPECT_TRUE(sparse->cell_names().empty());
  EXPECT_EQ(sparse->library_sizes(), memory.library_sizes());
  expect_same_cells(*sparse, memory, awkward_cells(c.cells));

  hid_t file = H5Fcreate(dense_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  write_dense(file, "assay001", c, H5T_STD_I32LE);  // integers, as R's HDF5Array writes counts
  H5Fclose(file);
  const auto streamed = Hdf5ExpressionSource::open_matrix(dense_path, "assay001", c.gene_names);
  EXPECT_EQ(streamed->format(), "hdf5_dense");
  expect_same_cells(*streamed, memory, awkward_cells(c.cells));

  auto error = [](const std::string& path, const std::string& name, const std::vector<std::string>& genes) {
    try {
      Hdf5ExpressionSource::open_matrix(path, name, genes);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::vector<std::string> fewer(c.gene_names.begin(), c.gene_names.end() - 1);
  EXPECT_NE(error(dense_path, "assay001", fewer).find("has 11 genes per cell but 10 gene names"), std::string::npos);
  EXPECT_NE(error(dense_path, "assay002", c.gene_names).find("has no object /assay002"), std::string::npos);
  EXPECT_NE(error(sparse_path, "matrix/features", c.gene_names).find("nor a sparse group"), std::string::npos);
  EXPECT_NE(error(sparse_path, "matrix", fewer).find("is 11 genes x 280 cells by its shape, but 10 gene names"),
            std::string::npos);
  std::remove(sparse_path.c_str());
  std::remove(dense_path.c_str());
}

TEST(Hdf5Source, GeneSelectionGivesTheCellsOfTheSubsetInMemory) {
  const Counts c = random_counts(20, 300, 8);
  const std::string path = temp_path("select.h5ad");
  write_h5ad(path, content_of(c));
  // Another order and a subset, as a model's genes against a bigger file.
  const std::vector<int> chosen{17, 3, 9, 0, 12};
  std::vector<std::string> genes;
  std::vector<double> subset(chosen.size() * c.cells, 0.0);  // genes x cells, column-major
  for (int g : chosen) genes.push_back(c.gene_names[g]);
  for (int cell = 0; cell < c.cells; ++cell) {
    for (int k = c.p[cell]; k < c.p[cell + 1]; ++k) {
      const auto at = std::find(chosen.begin(), chosen.end(), c.i[k]);
      if (at != chosen.end()) subset[cell * chosen.size() + (at - chosen.begin())] = c.x[k];
    }
  }
  const DenseExpressionSource memory(genes, c.cells, subset.data());
  const GeneSelectionSource selected(Hdf5ExpressionSource::open(path), genes);
  EXPECT_EQ(selected.genes(), genes);
  EXPECT_EQ(selected.n_cells(), c.cells);
  EXPECT_EQ(selected.library_sizes(), memory.library_sizes());
  expect_same_cells(selected, memory, awkward_cells(c.cells));
  selected.prefetch({4, 2});
  expect_same_cells(selected, memory, {4, 2});
  try {
    GeneSelectionSource(Hdf5ExpressionSource::open(path), {"gene1", "CD3E", "MS4A1"});
    ADD_FAILURE() << "missing genes were not reported";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("lacks 2 of the 3 genes asked for (CD3E, MS4A1)"), std::string::npos);
  }
  std::remove(path.c_str());
}

TEST(Hdf5Source, BlockShuffleIsASeededPermutationReadingFewStretches) {
  const Counts c = random_counts(5, 5000, 4);
  const std::string path = temp_path("shuffle.h5ad");
  write_h5ad(path, content_of(c), 64);
  const auto streamed = Hdf5ExpressionSource::open(path);
  // The blocks follow the file's chunks (64 cells here).
  EXPECT_NEAR(streamed->block_cells(), 64, 16);
  std::vector<int> train;
  for (int k = 0; k < c.cells; ++k) {
    if (k % 10 != 0) train.push_back(k);  // a validation split leaves gaps
  }
  std::mt19937_64 rng_a(7), rng_b(7), rng_c(8);
  std::vector<int> a = train, b = train, other = train;
  streamed->shuffle_epoch(a, rng_a);
  streamed->shuffle_epoch(b, rng_b);
  streamed->shuffle_epoch(other, rng_c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  EXPECT_NE(a, train);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, train);
  // A minibatch of 128 cells touches at most one buffer's blocks.
  const int block = streamed->block_cells();
  for (size_t lo = 0; lo + 128 <= a.size(); lo += 128) {
    std::set<int> blocks;
    for (size_t k = lo; k < lo + 128; ++k) {
      blocks.insert(static_cast<int>(std::lower_bound(train.begin(), train.end(), a[k]) - train.begin()) / block);
    }
    EXPECT_LE(blocks.size(), 2u * Hdf5ExpressionSource::kBlocksPerBuffer);
  }
  std::remove(path.c_str());
}

TEST(Hdf5Source, BadFilesGiveErrorsNamingTheFileAndField) {
  const std::string text = temp_path("not_hdf5.h5ad");
  FILE* f = std::fopen(text.c_str(), "w");
  std::fputs("not an HDF5 file", f);
  std::fclose(f);
  EXPECT_NE(error_of(text).find("is not an HDF5 file"), std::string::npos);
  EXPECT_NE(error_of(text).find(text), std::string::npos);
  EXPECT_NE(error_of(temp_path("missing.h5ad")).find("does not exist"), std::string::npos);
  std::remove(text.c_str());

  const Counts c = random_counts(6, 50, 5);
  H5adContent content = content_of(c);
  content.data[3] = 1.5f;  // normalised values, not counts
  const std::string path = temp_path("bad.h5ad");
  write_h5ad(path, content);
  const std::string message = error_of(path);
  EXPECT_NE(message.find("/X holds 1.5"), std::string::npos) << message;
  EXPECT_NE(message.find("raw counts"), std::string::npos);

  // An X that says it is CSC but is not; an empty file has no X.
  write_h5ad(path, content_of(c));
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t x = H5Gopen2(file, "X", H5P_DEFAULT);
  H5Adelete(x, "encoding-type");
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, 10);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(x, "encoding-type", type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, type, "csc_matrix");
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
  H5Gclose(x);
  H5Fclose(file);
  // A CSR group relabelled CSC: its offsets are per cell, not per gene.
  EXPECT_NE(error_of(path).find("/X/indptr has 51 entries for 6 genes (a csc_matrix has one more than the genes)"),
            std::string::npos)
      << error_of(path);
  file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(file);
  EXPECT_NE(error_of(path).find("nor an AnnData .h5ad (no X)"), std::string::npos);

  // Offsets that do not fit the data.
  content = content_of(c);
  write_h5ad(path, content);
  file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(file, "X/indptr", H5P_DEFAULT);
  hid_t group = H5Gopen2(file, "X", H5P_DEFAULT);
  write_array(group, "indptr", H5T_NATIVE_INT64, std::vector<int64_t>{0, 1, 2});
  H5Gclose(group);
  H5Fclose(file);
  EXPECT_NE(error_of(path).find("/X/indptr has 3 entries for 50 cells"), std::string::npos) << error_of(path);
  std::remove(path.c_str());

  // An encoding that is not a string stops the read (before, it looked
  // absent and X was read by its shape alone). An empty column-order, which
  // anndata writes as an empty array of floats, is no columns.
  write_h5ad(path, content_of(c));
  file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  x = H5Gopen2(file, "X", H5P_DEFAULT);
  H5Adelete(x, "encoding-type");
  space = H5Screate(H5S_SCALAR);
  const int32_t three = 3;
  a = H5Acreate2(x, "encoding-type", H5T_NATIVE_INT32, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT32, &three);
  H5Aclose(a);
  H5Sclose(space);
  H5Gclose(x);
  H5Fclose(file);
  EXPECT_NE(error_of(path).find("attribute 'encoding-type' of /X must hold strings"), std::string::npos)
      << error_of(path);
  EXPECT_NE(error_of(path).find(path), std::string::npos) << error_of(path);

  write_h5ad(path, content_of(c));  // no obs columns: column-order is written as anndata does
  EXPECT_TRUE(Hdf5ExpressionSource::open(path)->obs_columns().empty());
  std::remove(path.c_str());

  content = content_of(c);
  content.indices[0] = 99;
  EXPECT_THROW(write_h5ad(path, content), std::invalid_argument);
}

// anndata writes its attributes (encoding-type, _index, column-order) as
// variable-length UTF-8 strings. HDF5 1.10 converts them to ASCII only when
// an earlier read in the process happened to register a conversion path, so
// a reader that reads no string dataset first (open_matrix(), an
// H5ADMatrix's group) once missed the CSC encoding and read genes as cells.
// Checked in a fresh process: the death-test child re-runs this test alone,
// writes the file and reads it, with no earlier read to hide the problem.
TEST(Hdf5Source, ReadsAnndataEncodingAttributesInAFreshProcess) {
  const Counts c = random_counts(6, 9, 3);
  const std::string path = temp_path("utf8_csc.h5ad");
  write_csc_h5ad(path, c, false);
  const CscExpressionSource memory(c.gene_names, c.cells, c.p.data(), c.i.data(), c.x.data());
  std::vector<int> cells(c.cells);
  std::iota(cells.begin(), cells.end(), 0);
  std::vector<float> expected(cells.size() * c.genes);
  memory.fill_counts(cells, expected.data());
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const auto source = Hdf5ExpressionSource::open_matrix(path, "X", c.gene_names, ::testing::TempDir());
        std::vector<float> counts(expected.size());
        source->fill_counts(cells, counts.data());
        std::fprintf(stderr, "format %s, %d cells\n", source->format().c_str(), source->n_cells());
        // The child wrote its own file (temp_path() names it by process) and
        // exits here, before the test's last line: it removes that file itself.
        std::remove(path.c_str());
        std::exit(counts == expected ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "format hdf5_csc, 9 cells");
  std::remove(path.c_str());
}
