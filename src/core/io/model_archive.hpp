// The one-file format shared by every exprflow model: a tensor bundle
// (io/tensor_bundle.hpp) whose meta JSON names the format and its version,
// beside the weights and tensors each model adds, in a checksummed envelope
// (io/model_envelope.hpp). These helpers write and open such files with
// errors that name the file and what went wrong.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "exprflow/api.hpp"
#include "io/json.hpp"
#include "io/tensor_bundle.hpp"

namespace exprflow {

// The bytes of a model file holding `bundle`.
std::string model_file_bytes(const TensorBundle& bundle);

// The bundle in the model file bytes `bytes` (envelope checked), after
// checking that its meta names `format` at a version no newer than
// `max_version`. `source` names the bytes in errors (a path); `kind` names the
// file in messages, e.g. "model" or "connectivity model". Files of earlier
// versions hold a LibTorch archive (io/legacy_archive.hpp): they are read only
// with `trust_legacy`, else refused with an error saying how to convert them.
TensorBundle open_model_bytes(std::string_view bytes, const std::string& source, const std::string& format,
                              int max_version, const std::string& kind, bool trust_legacy);

// The start of every model file's meta JSON: format, version and spec (the
// caller adds what its model needs).
Json archive_meta(const std::string& format, int version, const Options& spec);

// Training history as stored in the meta JSON (NaN validation loss <-> null).
// Reading throws (a std::exception) when a row lacks a field or has the wrong type.
Json history_to_json(const std::vector<EpochRecord>& history);
std::vector<EpochRecord> history_from_json(const Json& rows);

}  // namespace exprflow
