// libFuzzer target: arbitrary text as a model spec in JSON (the form specs
// take in model files): Options::from_json, then completing it with its
// composition's defaults, which checks every key, type and registry name.
// Seed corpus: fuzz/corpus/fuzz_options_json.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "exprflow/options.hpp"
#include "models/compositions.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const exprflow::Options spec = exprflow::Options::from_json(std::string(reinterpret_cast<const char*>(data), size));
    const exprflow::Options complete = exprflow::complete_spec(spec);
    (void)exprflow::Options::from_json(complete.to_json());  // what a model file stores reads back
  } catch (const std::exception&) {
  }
  return 0;
}
