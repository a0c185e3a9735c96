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

void validate(const H5adContent& c) {
  const size_t n_cells = c.cells.size(), n_genes = c.genes.size();
  if (c.indptr.size() != n_cells + 1 || c.indptr.front() != 0 ||
      !std::is_sorted(c.indptr.begin(), c.indptr.end()) || static_cast<size_t>(c.indptr.back()) != c.data.size() ||
      c.indices.size() != c.data.size()) {
    throw std::invalid_argument("write_h5ad: the counts' offsets, indices and values do not agree");
  }
  for (int32_t g : c.indices) {
    if (g < 0 || static_cast<size_t>(g) >= n_genes) throw std::invalid_argument("write_h5ad: a gene index is out of range");
  }
  std::unordered_set<std::string> names{"_index"};
  for (const H5adColumn& column : c.obs) {
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

}  // namespace

void write_h5ad(const std::string& path, const H5adContent& content, int block_cells) {
  validate(content);
  if (block_cells < 1) throw std::invalid_argument("write_h5ad: block_cells must be at least 1");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const std::string temporary = path + ".tmp-exprflow";
  try {
    Closer file{H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
    if (file.id < 0) throw std::runtime_error("cannot create '" + path + "' (does its folder exist and is it writable?)");
    encoding(file.id, "anndata", "0.1.0");
    // Chunks of `block_cells` cells' entries: a block is one read.
    const hsize_t n_cells = content.cells.size();
    const hsize_t per_cell = n_cells ? std::max<hsize_t>(1, content.data.size() / n_cells) : 1;
    const hsize_t entry_chunk = std::max<hsize_t>(1024, per_cell * block_cells);
    {
      Closer x{group(file.id, "X"), H5Gclose};
      encoding(x.id, "csr_matrix", "0.1.0");
      const int64_t shape[2] = {static_cast<int64_t>(n_cells), static_cast<int64_t>(content.genes.size())};
      const hsize_t two = 2;
      Closer space{H5Screate_simple(1, &two, nullptr), H5Sclose};
      Closer a{checked(H5Acreate2(x.id, "shape", H5T_NATIVE_INT64, space.id, H5P_DEFAULT, H5P_DEFAULT), "shape"),
               H5Aclose};
      check(H5Awrite(a.id, H5T_NATIVE_INT64, shape), "shape");
      dataset(x.id, "data", H5T_NATIVE_FLOAT, content.data.data(), content.data.size(), entry_chunk);
      dataset(x.id, "indices", H5T_NATIVE_INT32, content.indices.data(), content.indices.size(), entry_chunk);
      dataset(x.id, "indptr", H5T_NATIVE_INT64, content.indptr.data(), content.indptr.size(), 1u << 16);
    }
    dataframe(file.id, "obs", content.cells, content.obs, 1u << 14);
    dataframe(file.id, "var", content.genes, {}, 1u << 14);
    for (const char* name : {"uns", "obsm", "varm", "obsp", "varp", "layers"}) {
      Closer g{group(file.id, name), H5Gclose};
      encoding(g.id, "dict", "0.1.0");
    }
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw std::runtime_error("cannot write '" + path + "' (rename of the finished file failed)");
  }
}

}  // namespace exprflow
