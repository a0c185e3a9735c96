// Reading HDF5 files through the C library: an identifier that closes
// itself, datasets opened with their own chunk cache, ranges of 1-d / 2-d
// datasets, strings and attributes. Errors are std::invalid_argument
// naming the file and the object. Internal to the core's data stage (the
// R glue never includes <hdf5.h>); used by the streamed source
// (hdf5_source) and the CSC transpose (csc_transpose).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace exprflow::hdf5 {

// One HDF5 identifier, closed with its own function when it goes.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept {
    std::swap(id_, other.id_);
    std::swap(close_, other.close_);
    return *this;
  }
  ~Handle() {
    if (id_ >= 0 && close_) close_(id_);
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};


// HDF5 prints its own error stack to stderr by default; exprflow reports
// errors as exceptions naming the file and the field instead.
void silence();

[[noreturn]] void fail(const std::string& path, const std::string& what);

// Whether every component of an absolute path ("/a/b/c") exists.
bool exists(hid_t file, const std::string& name);
H5O_type_t object_type(hid_t file, const std::string& name);

// `cache_bytes` > 0 gives the dataset its own chunk cache: a compressed
// chunk (about a thousand cells) is then decompressed once for all the
// minibatches of a shuffle buffer instead of once per read.
Handle open_dataset(hid_t file, const std::string& path, const std::string& name, size_t cache_bytes = 0);
std::vector<hsize_t> dataset_shape(hid_t dataset);

// Elements [lo, lo + n) of a 1-d dataset, or rows [lo, lo + n) of a 2-d one
// (all columns), converted to `memory_type`.
void read_range(hid_t dataset, hid_t memory_type, hsize_t lo, hsize_t n, void* out, const std::string& path,
                const std::string& name);

template <typename T>
std::vector<T> read_all(hid_t file, const std::string& path, const std::string& name, hid_t memory_type) {
  Handle d = open_dataset(file, path, name);
  const std::vector<hsize_t> dims = dataset_shape(d.get());
  if (dims.size() != 1) fail(path, name + " must be one-dimensional");
  std::vector<T> out(dims[0]);
  read_range(d.get(), memory_type, 0, dims[0], out.data(), path, name);
  return out;
}

// A 1-d dataset of strings (variable or fixed length).
std::vector<std::string> read_strings(hid_t file, const std::string& path, const std::string& name);
// A string attribute of an object ("" when it has none; an error when it
// holds no strings or cannot be read).
std::string string_attribute(hid_t file, const std::string& object, const std::string& name);
// A string-array attribute (anndata's column-order); empty when absent, an
// error as above.
std::vector<std::string> strings_attribute(hid_t file, const std::string& object, const std::string& name);
// An integer attribute (anndata's shape); empty when absent.
std::vector<int64_t> integer_attribute(hid_t file, const std::string& object, const std::string& name);

}  // namespace exprflow::hdf5
