// libFuzzer target: arbitrary bytes as the payload of a correctly sealed
// model file. The envelope's checksum stops random corruption before the
// payload is parsed, so this target seals each input first to reach what
// lies behind it: the tensor bundle's index and data, the meta JSON (keys,
// types, versions) and the weights, of both generative and connectivity
// models. (Legacy LibTorch archives are read only on trust; not fuzzed.)
// Seed corpus: fuzz/corpus/fuzz_model_payload (payloads of real model files).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "exprflow/api.hpp"
#include "exprflow/connectivity.hpp"
#include "io/model_envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string sealed = exprflow::seal_payload(std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    exprflow::GenerativeModel::load_bytes(sealed, "fuzz input");
  } catch (const std::exception&) {
  }
  try {
    exprflow::ConnectivityModel::load_bytes(sealed, "fuzz input");
  } catch (const std::exception&) {
  }
  return 0;
}
