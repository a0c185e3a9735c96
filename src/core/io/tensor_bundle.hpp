// exprflow's own container for a model's tensors: named CPU tensors plus a
// JSON "meta" object, written as plain bytes that a reader checks field by
// field before it allocates anything. It replaces LibTorch's TorchScript
// archives, whose reader (a zip parser plus the TorchScript importer) runs
// whatever class source a file carries and crashes on crafted files (see
// src/core/fuzz/README.md), and whose writer aborts under LibTorch 2.11 builds
// of the core. Nothing here executes what a file says: it only copies bytes.
//
//   payload (inside the checksummed envelope, io/model_envelope.hpp):
//   offset  size  field
//   0       8     magic "EXFTNSR1"
//   8       8     n: length of the index in bytes, little endian
//   16      n     index: UTF-8 JSON {"meta": {...}, "tensors": [{"name", "dtype",
//                 "shape", "offset", "bytes"}, ...]}
//   16+n    ...   data: each tensor's elements, row-major, little endian, at
//                 its "offset" from the start of the data
//
// dtypes: "float32", "float64", "int64", "int32", "bool", "uint8" (raw bytes,
// e.g. a random generator's state). A module's parameters and
// buffers are stored as "<prefix>/<name from named_parameters()>".
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exprflow/torch_prelude.hpp"
#include "io/json.hpp"

namespace exprflow {

class TensorBundle {
 public:
  Json meta = Json::object();

  // Stores a contiguous CPU copy of `tensor` under `name` (replacing one of
  // the same name).
  void put(const std::string& name, const Tensor& tensor);
  bool has(const std::string& name) const;
  // Throws std::invalid_argument naming the tensor when it is absent.
  const Tensor& get(const std::string& name) const;
  // The same, and std::invalid_argument unless it has this shape and dtype.
  const Tensor& get(const std::string& name, at::IntArrayRef shape, at::ScalarType dtype) const;
  const std::vector<std::pair<std::string, Tensor>>& tensors() const { return tensors_; }

  // Every parameter and buffer of `module` under "<prefix>/...".
  void put_module(const std::string& prefix, const torch::nn::Module& module);
  // Copies them back into `module` (on whatever device it is). Throws
  // std::invalid_argument when one is missing, has another shape or dtype,
  // or the bundle holds a "<prefix>/..." tensor the module does not have:
  // a file of another architecture must not load half its weights.
  void get_module(const std::string& prefix, torch::nn::Module& module) const;

  std::string to_bytes() const;
  // Throws std::invalid_argument saying which field is malformed.
  static TensorBundle from_bytes(std::string_view bytes);
  // Whether `bytes` start like a bundle (the magic).
  static bool looks_like_bundle(std::string_view bytes);

 private:
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

}  // namespace exprflow
