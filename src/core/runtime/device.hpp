// The device a model runs on, from its spec's "device" setting.
#pragma once

#include <string>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// "cpu" or "cuda" (the first GPU); "cuda" without a usable GPU is an error
// that says why.
at::Device parse_device(const std::string& name);

}  // namespace exprflow
