// Model files written before exprflow had its own tensor container hold a
// LibTorch (TorchScript) archive. Reading one runs LibTorch's zip reader and
// TorchScript importer, which crash on crafted files (src/core/fuzz/README.md),
// so the loaders read them only when the caller says the file is trusted.
#pragma once

#include <stdexcept>
#include <string_view>

#include "io/tensor_bundle.hpp"

namespace exprflow {

// The archive's "meta" JSON string and every tensor it holds, as a bundle: a
// top-level tensor under its key, a nested module archive's tensors under
// "<key>/<dotted name>", the names TensorBundle::put_module() gives them.
// Throws std::exception when LibTorch cannot read the archive, and
// LegacyArchiveUnsupported, without reading, in builds against LibTorch 2.x
// (see the .cpp).
TensorBundle bundle_from_legacy_archive(std::string_view payload);

struct LegacyArchiveUnsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace exprflow
