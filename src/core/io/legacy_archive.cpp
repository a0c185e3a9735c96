#include "io/legacy_archive.hpp"

#include <torch/serialize/input-archive.h>
#include <torch/version.h>

#include <stdexcept>
#include <string>

namespace exprflow {

namespace {

// A module archive's tensors, with nested modules' names joined by '.' as
// named_parameters() joins them. Other attributes (TorchScript's "training"
// flag) are skipped.
void collect(torch::serialize::InputArchive& archive, const std::string& prefix, const std::string& path,
             TensorBundle& bundle) {
  for (const std::string& key : archive.keys()) {
    Tensor tensor;
    if (archive.try_read(key, tensor)) {
      bundle.put(prefix + "/" + path + key, tensor);
      continue;
    }
    torch::serialize::InputArchive child;
    if (archive.try_read(key, child)) collect(child, prefix, path + key + ".", bundle);
  }
}

}  // namespace

TensorBundle bundle_from_legacy_archive(std::string_view payload) {
#if TORCH_VERSION_MAJOR >= 2
  // Built against LibTorch 2.11 (+cu130, the lent GPU machine's), reading
  // such an archive aborted the process (free(): invalid pointer, in
  // LibTorch's archive code; its writer did the same). Refuse instead of
  // risking that; Debian's LibTorch 1.13 builds, R's, read these files.
  (void)payload;
  throw LegacyArchiveUnsupported(
      "this exprflow is built against LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
      std::to_string(TORCH_VERSION_MINOR) + ", whose archive reader aborted on such files when tested; convert the "
      "file with an exprflow built against LibTorch 1.13 (the R package on Debian 12): load it there with "
      "trust_legacy = TRUE and save it again");
#else
  torch::serialize::InputArchive archive;
  archive.load_from(payload.data(), payload.size());
  c10::IValue meta;
  archive.read("meta", meta);
  TensorBundle bundle;
  bundle.meta = Json::parse(meta.toStringRef());
  if (!bundle.meta.is_object()) throw std::invalid_argument("the archive's meta is not a JSON object");
  for (const std::string& key : archive.keys()) {
    if (key == "meta") continue;
    Tensor tensor;
    if (archive.try_read(key, tensor)) {
      bundle.put(key, tensor);
      continue;
    }
    torch::serialize::InputArchive part;
    if (archive.try_read(key, part)) collect(part, key, "", bundle);
  }
  return bundle;
#endif
}

}  // namespace exprflow
