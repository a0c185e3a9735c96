// The one-file format shared by every exprflow model: a LibTorch archive
// whose "meta" entry is a JSON string naming the format and its version,
// beside the weights and tensors each model adds. These helpers write and
// open such files with errors that name the file and what went wrong. The
// archive travels inside a checksummed envelope (io/model_envelope.hpp).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "exprflow/api.hpp"
#include "io/json.hpp"

namespace exprflow {

// The bytes of a model file holding `archive`: the archive in its checked
// envelope (io/model_envelope.hpp).
std::string model_archive_bytes(torch::serialize::OutputArchive& archive);

// Loads the model file bytes `bytes` (envelope checked) into `archive` and
// returns its meta JSON after checking that it is a `format` file no newer
// than `max_version`. `source` names the bytes in errors (a path); `kind`
// names the file in messages, e.g. "model" or "connectivity model".
Json open_model_bytes(torch::serialize::InputArchive& archive, std::string_view bytes, const std::string& source,
                      const std::string& format, int max_version, const std::string& kind);

// The start of every model file's meta JSON: format, version and spec (the
// caller adds what its model needs).
Json archive_meta(const std::string& format, int version, const Options& spec);

// Training history as stored in the meta JSON (NaN validation loss <-> null).
// Reading throws (a std::exception) when a row lacks a field or has the wrong type.
Json history_to_json(const std::vector<EpochRecord>& history);
std::vector<EpochRecord> history_from_json(const Json& rows);

}  // namespace exprflow
