// The file of a generative model (gene-space or latent): one LibTorch archive
// with a "meta" JSON entry. What every model kind writes the same way lives
// here -- the format name and version, the common meta fields, resources,
// library-size pools -- so GenerativeModel::load() can open any file and hand
// it to the class its architecture names.
#pragma once

#include <string>
#include <vector>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "data/library_sizes.hpp"
#include "exprflow/api.hpp"
#include "io/json.hpp"

namespace exprflow {

// The meta fields every generative model file holds: format, version, spec,
// genes, condition_levels, trained, annotations, history, resources.
Json generative_model_meta(const GenerativeModel& model);
// Opens the bytes of a model file (`path` names them in errors) and checks
// they hold a generative model of this format version.
Json open_generative_model_bytes(torch::serialize::InputArchive& archive, std::string_view bytes,
                                 const std::string& path);

void write_resources(torch::serialize::OutputArchive& archive, const Resources& resources);
Resources read_resources(torch::serialize::InputArchive& archive, const Json& meta);

void write_library_sizes(torch::serialize::OutputArchive& archive, const LibrarySizePools& pools);
void read_library_sizes(torch::serialize::InputArchive& archive, LibrarySizePools& pools);

// A module's state as a nested archive under `key`, and back.
void write_module(torch::serialize::OutputArchive& archive, const std::string& key, const torch::nn::Module& module);
void read_module(torch::serialize::InputArchive& archive, const std::string& key, torch::nn::Module& module);

}  // namespace exprflow
