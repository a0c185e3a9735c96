#include "data/h5ad_writer.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <unordered_set>

namespace exprflow {

namespace {

// Closes an HDF5 identifier when it goes out of scope.
struct Closer {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Closer() {
    if (id >= 0) close(id);
  }
};

void check(herr_t status, const std::string& what) {
  if (status < 0) throw std::runtime_error("writing the .h5ad failed: " + what);
}

hid_t checked(hid_t id, const std::string& what) {
  if (id < 0) throw std::runtime_error("writing the .h5ad failed: " + what);
  return id;
}

hid_t utf8_string_type() {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  return type;
}

void string_attribute(hid_t object, const char* name, const std::string& value) {
  Closer type{utf8_string_type(), H5Tclose};
  Closer space{H5Screate(H5S_SCALAR), H5Sclose};
  Closer a{checked(H5Acreate2(object, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), name), H5Aclose};
  const char* text = value.c_str();
  check(H5Awrite(a.id, type.id, &text), name);
}

void encoding(hid_t object, const std::string& type, const std::string& version) {
  string_attribute(object, "encoding-type", type);
  string_attribute(object, "encoding-version", version);
}

// A string-array attribute (column-order); an empty one is an empty float
// array, as anndata writes it.
void strings_attribute(hid_t object, const char* name, const std::vector<std::string>& values) {
  const hsize_t n = values.size();
  Closer space{H5Screate_simple(1, &n, nullptr), H5Sclose};
  if (values.empty()) {
    Closer a{checked(H5Acreate2(object, name, H5T_NATIVE_DOUBLE, space.id, H5P_DEFAULT, H5P_DEFAULT), name),
             H5Aclose};
    return;
  }
  Closer type{utf8_string_type(), H5Tclose};
  Closer a{checked(H5Acreate2(object, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), name), H5Aclose};
  std::vector<const char*> text;
  for (const std::string& v : values) text.push_back(v.c_str());
  check(H5Awrite(a.id, type.id, text.data()), name);
}

hid_t group(hid_t parent, const std::string& name) {
  return checked(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), name);
}

// A 1-d dataset, chunked and gzip-compressed when it holds more than a chunk.
void dataset(hid_t parent, const std::string& name, hid_t type, const void* values, hsize_t n, hsize_t chunk,
             const std::string& encoding_type = "array", const std::string& version = "0.2.0") {
  Closer space{H5Screate_simple(1, &n, nullptr), H5Sclose};
  Closer properties{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  if (n > 0) {
    chunk = std::max<hsize_t>(1, std::min(chunk, n));
    check(H5Pset_chunk(properties.id, 1, &chunk), name);
    check(H5Pset_deflate(properties.id, 4), name);
  }
  Closer d{checked(H5Dcreate2(parent, name.c_str(), type, space.id, H5P_DEFAULT, properties.id, H5P_DEFAULT), name),
           H5Dclose};
  if (n > 0) check(H5Dwrite(d.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), name);
  encoding(d.id, encoding_type, version);
}

void strings_dataset(hid_t parent, const std::string& name, const std::vector<std::string>& values, hsize_t chunk) {
  Closer type{utf8_string_type(), H5Tclose};
  std::vector<const char*> text;
  for (const std::string& v : values) text.push_back(v.c_str());
  dataset(parent, name, type.id, text.data(), values.size(), chunk, "string-array", "0.2.0");
}

void dataframe(hid_t parent, const std::string& name, const std::vector<std::string>& index,
               const std::vector<H5adColumn>& columns, hsize_t chunk) {
  Closer g{group(parent, name), H5Gclose};
  encoding(g.id, "dataframe", "0.2.0");
  string_attribute(g.id, "_index", "_index");
  std::vector<std::string> order;
  for (const H5adColumn& c : columns) order.push_back(c.name);
  strings_attribute(g.id, "column-order", order);
  strings_dataset(g.id, "_index", index, chunk);
  for (const H5adColumn& c : columns) {
    if (c.numeric) {
      dataset(g.id, c.name, H5T_NATIVE_DOUBLE, c.numbers.data(), c.numbers.size(), chunk);
      continue;
    }
    Closer column{group(g.id, c.name), H5Gclose};
    encoding(column.id, "categorical", "0.2.0");
    // A numpy bool as h5py writes it (an int8 enum FALSE / TRUE): pandas
    // accepts nothing else for `ordered`.
    Closer boolean{H5Tenum_create(H5T_NATIVE_INT8), H5Tclose};
    const int8_t no = 0, yes = 1;
    H5Tenum_insert(boolean.id, "FALSE", &no);
    H5Tenum_insert(boolean.id, "TRUE", &yes);
    Closer space{H5Screate(H5S_SCALAR), H5Sclose};
    Closer ordered{checked(H5Acreate2(column.id, "ordered", boolean.id, space.id, H5P_DEFAULT, H5P_DEFAULT),
                           "ordered"),
                   H5Aclose};
    check(H5Awrite(ordered.id, boolean.id, &no), "ordered");
    strings_dataset(column.id, "categories", c.categories, chunk);
    dataset(column.id, "codes", H5T_NATIVE_INT32, c.codes.data(), c.codes.size(), chunk);
  }
}

void validate_obs(const std::vector<H5adColumn>& obs, size_t n_cells) {
  std::unordered_set<std::string> names{"_index"};
  for (const H5adColumn& column : obs) {
    if (column.name.empty() || column.name.find('/') != std::string::npos || !names.insert(column.name).second) {
      throw std::invalid_argument("write_h5ad: obs column name '" + column.name +
                                  "' is empty, repeated, reserved or holds '/'");
    }
    const size_t n = column.numeric ? column.numbers.size() : column.codes.size();
    if (n != n_cells) throw std::invalid_argument("write_h5ad: obs column '" + column.name + "' has the wrong length");
    for (int32_t code : column.codes) {
      if (code < -1 || code >= static_cast<int32_t>(column.categories.size())) {
        throw std::invalid_argument("write_h5ad: obs column '" + column.name + "' has a code beyond its categories");
      }
    }
  }
}

// A 1-d dataset that grows: chunked, gzip-compressed, unlimited.
hid_t growing_dataset(hid_t parent, const char* name, hid_t type, hsize_t chunk) {
  const hsize_t zero = 0, unlimited = H5S_UNLIMITED;
  Closer space{H5Screate_simple(1, &zero, &unlimited), H5Sclose};
  Closer properties{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  check(H5Pset_chunk(properties.id, 1, &chunk), name);
  check(H5Pset_deflate(properties.id, 4), name);
  const hid_t d = checked(H5Dcreate2(parent, name, type, space.id, H5P_DEFAULT, properties.id, H5P_DEFAULT), name);
  encoding(d, "array", "0.2.0");
  return d;
}

// Appends n values at offset `at` of a growing dataset.
void grow(hid_t dataset, hid_t type, hsize_t at, hsize_t n, const void* values, const char* name) {
  if (n == 0) return;
  const hsize_t size = at + n;
  check(H5Dset_extent(dataset, &size), name);
  Closer file_space{H5Dget_space(dataset), H5Sclose};
  check(H5Sselect_hyperslab(file_space.id, H5S_SELECT_SET, &at, nullptr, &n, nullptr), name);
  Closer memory_space{H5Screate_simple(1, &n, nullptr), H5Sclose};
  check(H5Dwrite(dataset, type, memory_space.id, file_space.id, H5P_DEFAULT, values), name);
}

}  // namespace

struct H5adWriter::Datasets {
  hid_t file = -1, x = -1, data = -1, indices = -1, indptr = -1;
  ~Datasets() {
    for (hid_t d : {data, indices, indptr}) {
      if (d >= 0) H5Dclose(d);
    }
    if (x >= 0) H5Gclose(x);
    if (file >= 0) H5Fclose(file);
  }
};

H5adWriter::H5adWriter(std::string path, std::vector<std::string> genes, int block_cells)
    : path_(std::move(path)), temporary_(path_ + ".tmp-exprflow"), genes_(std::move(genes)),
      block_cells_(block_cells) {
  if (block_cells_ < 1) throw std::invalid_argument("write_h5ad: block_cells must be at least 1");
  if (genes_.empty()) throw std::invalid_argument("write_h5ad: no genes");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  datasets_ = std::make_unique<Datasets>();
  datasets_->file = H5Fcreate(temporary_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (datasets_->file < 0) {
    throw std::runtime_error("cannot create '" + path_ + "' (does its folder exist and is it writable?)");
  }
  try {
    encoding(datasets_->file, "anndata", "0.1.0");
    datasets_->x = group(datasets_->file, "X");
    encoding(datasets_->x, "csr_matrix", "0.1.0");
    datasets_->indptr = growing_dataset(datasets_->x, "indptr", H5T_NATIVE_INT64, 1u << 16);
    const int64_t zero = 0;
    grow(datasets_->indptr, H5T_NATIVE_INT64, 0, 1, &zero, "indptr");
  } catch (...) {
    datasets_.reset();
    std::remove(temporary_.c_str());
    throw;
  }
}

H5adWriter::~H5adWriter() {
  if (datasets_) {
    datasets_.reset();
    std::remove(temporary_.c_str());
  }
}

void H5adWriter::append(const std::vector<std::string>& cells, const std::vector<int64_t>& indptr,
                        const std::vector<int32_t>& indices, const std::vector<float>& data) {
  if (!datasets_) throw std::logic_error("write_h5ad: the file is already finished");
  if (indptr.size() != cells.size() + 1 || indptr.front() != 0 || !std::is_sorted(indptr.begin(), indptr.end()) ||
      static_cast<size_t>(indptr.back()) != data.size() || indices.size() != data.size()) {
    throw std::invalid_argument("write_h5ad: the counts' offsets, indices and values do not agree");
  }
  for (int32_t g : indices) {
    if (g < 0 || static_cast<size_t>(g) >= genes_.size()) {
      throw std::invalid_argument("write_h5ad: a gene index is out of range");
    }
  }
  if (cells.empty()) return;
  if (datasets_->data < 0) {
    // Chunks of about block_cells cells' entries: a block of cells is one read.
    const hsize_t per_cell = std::max<hsize_t>(1, data.size() / cells.size());
    const hsize_t chunk = std::max<hsize_t>(1, per_cell * block_cells_);
    datasets_->data = growing_dataset(datasets_->x, "data", H5T_NATIVE_FLOAT, chunk);
    datasets_->indices = growing_dataset(datasets_->x, "indices", H5T_NATIVE_INT32, chunk);
  }
  grow(datasets_->data, H5T_NATIVE_FLOAT, entries_, data.size(), data.data(), "data");
  grow(datasets_->indices, H5T_NATIVE_INT32, entries_, indices.size(), indices.data(), "indices");
  std::vector<int64_t> offsets(indptr.begin() + 1, indptr.end());
  for (int64_t& o : offsets) o += entries_;
  grow(datasets_->indptr, H5T_NATIVE_INT64, cells_.size() + 1, offsets.size(), offsets.data(), "indptr");
  entries_ += static_cast<int64_t>(data.size());
  cells_.insert(cells_.end(), cells.begin(), cells.end());
}

void H5adWriter::finish(const std::vector<H5adColumn>& obs) {
  if (!datasets_) throw std::logic_error("write_h5ad: the file is already finished");
  validate_obs(obs, cells_.size());
  const hid_t file = datasets_->file;
  if (datasets_->data < 0) {  // no entries: empty datasets still make a valid matrix
    datasets_->data = growing_dataset(datasets_->x, "data", H5T_NATIVE_FLOAT, 1024);
    datasets_->indices = growing_dataset(datasets_->x, "indices", H5T_NATIVE_INT32, 1024);
  }
  const int64_t shape[2] = {static_cast<int64_t>(cells_.size()), static_cast<int64_t>(genes_.size())};
  const hsize_t two = 2;
  {
    Closer space{H5Screate_simple(1, &two, nullptr), H5Sclose};
    Closer a{checked(H5Acreate2(datasets_->x, "shape", H5T_NATIVE_INT64, space.id, H5P_DEFAULT, H5P_DEFAULT), "shape"),
             H5Aclose};
    check(H5Awrite(a.id, H5T_NATIVE_INT64, shape), "shape");
  }
  dataframe(file, "obs", cells_, obs, 1u << 14);
  dataframe(file, "var", genes_, {}, 1u << 14);
  for (const char* name : {"uns", "obsm", "varm", "obsp", "varp", "layers"}) {
    Closer g{group(file, name), H5Gclose};
    encoding(g.id, "dict", "0.1.0");
  }
  datasets_.reset();  // closes the file
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0) {
    std::remove(temporary_.c_str());
    throw std::runtime_error("cannot write '" + path_ + "' (rename of the finished file failed)");
  }
}

void write_h5ad(const std::string& path, const H5adContent& content, int block_cells) {
  if (content.indptr.size() != content.cells.size() + 1) {
    throw std::invalid_argument("write_h5ad: the counts' offsets, indices and values do not agree");
  }
  validate_obs(content.obs, content.cells.size());
  H5adWriter writer(path, content.genes, block_cells);
  writer.append(content.cells, content.indptr, content.indices, content.data);
  writer.finish(content.obs);
}

}  // namespace exprflow
