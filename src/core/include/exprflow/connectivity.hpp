// The torch-free face of the connectivity models: predict the connectivity of
// every pair of brain regions from the two regions' gene expression.
//
// A front end (the R glue, a benchmark) hands over region-level data and pair
// lists; the models, their training and their file format live in
// src/core/connectivity/. No LibTorch header here, so the glue compiles fast.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exprflow/api.hpp"  // EpochRecord, TrainReport, TrainCallbacks
#include "exprflow/gene_embedding.hpp"  // GeneEmbedding: fixed when a model is created
#include "exprflow/options.hpp"

namespace exprflow {

// Region-level inputs shared by every pair. Regions are rows; regions whose
// expression is missing have already been dropped by the front end (it keeps
// the map back to the original numbering).
struct RegionData {
  int n_regions = 0;
  int n_genes = 0;
  std::vector<float> expression;  // regions x genes, row-major, scaled to [0, 1], finite
  std::vector<float> coords;      // regions x 3, row-major; may be empty (then no "spatial" CLS)
};

// Ordered region pairs (i, j), 0-based rows of RegionData, with their targets
// (targets may be empty for prediction).
struct RegionPairs {
  std::vector<int> i, j;
  std::vector<float> target;
};

class ConnectivityModel {
 public:
  virtual ~ConnectivityModel() = default;

  // Registry names: the attention models (e.g. "cross_attention") and the
  // "bilinear" baseline; an unknown name is an error that lists the valid ones.
  static std::vector<std::string> architectures();
  static Options default_spec(const std::string& architecture);
  // Training options of an architecture with their defaults (the attention
  // models share them; the bilinear baseline has its own).
  static Options default_train_options(const std::string& architecture);

  // `spec` holds "architecture" plus overrides of its defaults (unknown keys
  // are an error). The embedding fixes the model's gene count.
  static std::unique_ptr<ConnectivityModel> create(const Options& spec, const GeneEmbedding& genes);
  // Files of earlier exprflow versions (LibTorch archives) are read only with
  // `trust_legacy`, as GenerativeModel::load() explains.
  static std::unique_ptr<ConnectivityModel> load(const std::string& path, bool trust_legacy = false);
  // A model from the bytes of a model file (a file read whole, or an R
  // object's own copy); `source` names them in errors.
  static std::unique_ptr<ConnectivityModel> load_bytes(std::string_view bytes, const std::string& source,
                                                       bool trust_legacy = false);

  virtual TrainReport train(const RegionData& regions, const RegionPairs& train_pairs,
                            const RegionPairs& validation_pairs, const Options& train_options,
                            const TrainCallbacks& callbacks) = 0;

  // One prediction per pair (EMA / best weights, eval mode, no dropout).
  virtual std::vector<float> predict(const RegionData& regions, const RegionPairs& pairs,
                                     int batch_size) = 0;

  // Attention of one layer for the pair (i, j), averaged over heads:
  // queries x keys, row-major; *rows and *cols receive the shape. A model
  // without attention (the bilinear baseline) throws std::invalid_argument.
  virtual std::vector<float> attention_map(const RegionData& regions, int i, int j, int layer,
                                           int* rows, int* cols) = 0;

  // The model file's bytes (checksummed envelope); save() writes them atomically.
  virtual std::string to_bytes() const = 0;
  void save(const std::string& path) const;
  virtual const Options& spec() const = 0;
  virtual const std::vector<EpochRecord>& history() const = 0;
  virtual long parameter_count() const = 0;
};

}  // namespace exprflow
