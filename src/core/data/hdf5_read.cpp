#include "data/hdf5_read.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace exprflow::hdf5 {

void silence() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::invalid_argument("'" + path + "': " + what);
}

bool exists(hid_t file, const std::string& name) {
  size_t position = 0;
  while (true) {
    position = name.find('/', position + 1);
    const std::string prefix = name.substr(0, position);
    if (prefix.size() > 1 && H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (position == std::string::npos) return true;
  }
}

H5O_type_t object_type(hid_t file, const std::string& name) {
  H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
  if (H5Oget_info_by_name3(file, name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return H5O_TYPE_UNKNOWN;
#else
  if (H5Oget_info_by_name(file, name.c_str(), &info, H5P_DEFAULT) < 0) return H5O_TYPE_UNKNOWN;
#endif
  return info.type;
}

Handle open_dataset(hid_t file, const std::string& path, const std::string& name, size_t cache_bytes) {
  if (!exists(file, name) || object_type(file, name) != H5O_TYPE_DATASET) fail(path, "has no dataset " + name);
  Handle access(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
  // Preemption weight 0.75 (HDF5's default), not 1.0: with 1.0, HDF5 1.10.8
  // kept every decompressed chunk a reader touched whatever the cache size
  // (random reads of one 160 MB dataset: 165 MB resident with a 32 MB or
  // a 1 MB cache, 66 MB at 0.75).
  if (cache_bytes > 0) H5Pset_chunk_cache(access.get(), 12421, cache_bytes, 0.75);
  Handle d(H5Dopen2(file, name.c_str(), access.get()), H5Dclose);
  if (!d.valid()) fail(path, "cannot open dataset " + name);
  return d;
}

std::vector<hsize_t> dataset_shape(hid_t dataset) {
  Handle space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(std::max(rank, 0));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

void read_range(hid_t dataset, hid_t memory_type, hsize_t lo, hsize_t n, void* out, const std::string& path,
                const std::string& name) {
  if (n == 0) return;
  Handle file_space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(file_space.get());
  hsize_t start[2] = {lo, 0}, count[2] = {n, 0};
  if (rank == 2) {
    hsize_t dims[2];
    H5Sget_simple_extent_dims(file_space.get(), dims, nullptr);
    count[1] = dims[1];
  }
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0) {
    fail(path, "cannot select entries of " + name);
  }
  Handle memory_space(H5Screate_simple(rank, count, nullptr), H5Sclose);
  if (H5Dread(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, out) < 0) {
    fail(path, "cannot read " + name + " (truncated or damaged file?)");
  }
}

namespace {

// The memory type strings of `file_type` are read as: C strings of `size`
// bytes (H5T_VARIABLE for variable-length ones) in the file's character set.
// HDF5 1.10 has no conversion between character sets, so reading anndata's
// UTF-8 strings as ASCII fails (unless an earlier read happened to register
// a conversion path for them).
Handle string_memory_type(hid_t file_type, size_t size) {
  Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(memory.get(), size);
  H5Tset_cset(memory.get(), H5Tget_cset(file_type));
  return memory;
}

// The file's name, for errors raised where only its identifier is at hand.
std::string file_name(hid_t object) {
  const ssize_t length = H5Fget_name(object, nullptr, 0);
  if (length <= 0) return "(unnamed HDF5 file)";
  std::string name(static_cast<size_t>(length) + 1, '\0');
  H5Fget_name(object, name.data(), name.size());
  name.resize(static_cast<size_t>(length));
  return name;
}

// An existing attribute and its type. A string attribute that holds no
// strings or cannot be read stops the read instead of looking absent: a
// misread encoding reads genes as cells.
struct StringAttribute {
  Handle attribute;
  Handle type;
};

StringAttribute open_attribute(hid_t file, const std::string& object, const std::string& name) {
  StringAttribute out{Handle(H5Aopen_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose),
                      Handle()};
  if (!out.attribute.valid()) fail(file_name(file), "cannot open attribute '" + name + "' of " + object);
  out.type = Handle(H5Aget_type(out.attribute.get()), H5Tclose);
  return out;
}

void require_strings(const StringAttribute& a, hid_t file, const std::string& object, const std::string& name) {
  if (H5Tget_class(a.type.get()) != H5T_STRING) {
    fail(file_name(file), "attribute '" + name + "' of " + object + " must hold strings");
  }
}

[[noreturn]] void unreadable_attribute(hid_t file, const std::string& object, const std::string& name) {
  fail(file_name(file), "cannot read attribute '" + name + "' of " + object);
}

}  // namespace

std::vector<std::string> read_strings(hid_t file, const std::string& path, const std::string& name) {
  Handle d = open_dataset(file, path, name);
  const std::vector<hsize_t> dims = dataset_shape(d.get());
  if (dims.size() != 1) fail(path, name + " must be one-dimensional");
  Handle type(H5Dget_type(d.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) fail(path, name + " must hold strings");
  std::vector<std::string> out(dims[0]);
  if (dims[0] == 0) return out;
  if (H5Tis_variable_str(type.get()) > 0) {
    const Handle memory = string_memory_type(type.get(), H5T_VARIABLE);
    std::vector<char*> buffer(dims[0], nullptr);
    read_range(d.get(), memory.get(), 0, dims[0], buffer.data(), path, name);
    for (size_t k = 0; k < out.size(); ++k) out[k] = buffer[k] ? buffer[k] : "";
    Handle space(H5Dget_space(d.get()), H5Sclose);
    H5Dvlen_reclaim(memory.get(), space.get(), H5P_DEFAULT, buffer.data());
  } else {
    const size_t width = H5Tget_size(type.get());
    const Handle memory = string_memory_type(type.get(), width);
    std::vector<char> buffer(width * dims[0]);
    read_range(d.get(), memory.get(), 0, dims[0], buffer.data(), path, name);
    for (size_t k = 0; k < out.size(); ++k) {
      const char* start = buffer.data() + k * width;
      out[k] = std::string(start, strnlen(start, width));
    }
  }
  return out;
}

std::string string_attribute(hid_t file, const std::string& object, const std::string& name) {
  if (H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT) <= 0) return "";
  const StringAttribute a = open_attribute(file, object, name);
  require_strings(a, file, object, name);
  if (H5Tis_variable_str(a.type.get()) > 0) {
    char* value = nullptr;
    const Handle memory = string_memory_type(a.type.get(), H5T_VARIABLE);
    if (H5Aread(a.attribute.get(), memory.get(), &value) < 0) unreadable_attribute(file, object, name);
    std::string out = value ? value : "";
    H5free_memory(value);
    return out;
  }
  const size_t width = H5Tget_size(a.type.get());
  std::vector<char> buffer(width + 1, '\0');
  if (H5Aread(a.attribute.get(), a.type.get(), buffer.data()) < 0) unreadable_attribute(file, object, name);
  return std::string(buffer.data(), strnlen(buffer.data(), width));
}

std::vector<std::string> strings_attribute(hid_t file, const std::string& object, const std::string& name) {
  if (H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT) <= 0) return {};
  const StringAttribute a = open_attribute(file, object, name);
  Handle space(H5Aget_space(a.attribute.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  // anndata writes an empty column-order as an empty array of floats.
  if (n <= 0) return {};
  require_strings(a, file, object, name);
  std::vector<std::string> out(n);
  if (H5Tis_variable_str(a.type.get()) > 0) {
    std::vector<char*> buffer(n, nullptr);
    const Handle memory = string_memory_type(a.type.get(), H5T_VARIABLE);
    if (H5Aread(a.attribute.get(), memory.get(), buffer.data()) < 0) unreadable_attribute(file, object, name);
    for (hssize_t k = 0; k < n; ++k) out[k] = buffer[k] ? buffer[k] : "";
    H5Dvlen_reclaim(memory.get(), space.get(), H5P_DEFAULT, buffer.data());
  } else {
    const size_t width = H5Tget_size(a.type.get());
    std::vector<char> buffer(width * n);
    if (H5Aread(a.attribute.get(), a.type.get(), buffer.data()) < 0) unreadable_attribute(file, object, name);
    for (hssize_t k = 0; k < n; ++k) out[k] = std::string(buffer.data() + k * width, strnlen(buffer.data() + k * width, width));
  }
  return out;
}

std::vector<int64_t> integer_attribute(hid_t file, const std::string& object, const std::string& name) {
  if (H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT) <= 0) return {};
  Handle a(H5Aopen_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  Handle space(H5Aget_space(a.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<int64_t> out(std::max<hssize_t>(n, 0));
  if (n > 0 && H5Aread(a.get(), H5T_NATIVE_INT64, out.data()) < 0) return {};
  return out;
}

}  // namespace exprflow::hdf5
