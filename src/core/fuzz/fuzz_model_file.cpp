// libFuzzer target: arbitrary bytes as a generative model file
// (GenerativeModel::load_bytes: envelope, LibTorch archive, meta JSON,
// weights). Every malformed input must end in an exception, never a crash,
// a hang or a sanitizer report. Seed corpus: fuzz/corpus/fuzz_model_file.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

#include "exprflow/api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    exprflow::GenerativeModel::load_bytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz input");
  } catch (const std::exception&) {
    // A clear refusal is the expected outcome for malformed bytes.
  }
  return 0;
}
