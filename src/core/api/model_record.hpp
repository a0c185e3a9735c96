// What every generative model keeps beside its networks, and answers for
// through the GenerativeModel interface: the spec (completed with its
// composition's defaults), genes, covariates, resources, annotations,
// device and training history. Its constructor does the checks and the
// seeding every model starts with; ExpressionModel and LatentModel add their
// networks and state.
#pragma once

#include <string>
#include <vector>

#include "exprflow/api.hpp"
#include "exprflow/torch_prelude.hpp"
#include "data/cell_batch.hpp"
#include "data/split.hpp"
#include "io/json.hpp"

namespace exprflow {

class ModelRecord : public GenerativeModel {
 public:
  Options& annotations() override { return annotations_; }
  const Options& spec() const override { return spec_; }
  const Resources& resources() const override { return resources_; }
  const std::vector<std::string>& genes() const override { return genes_; }
  const std::vector<Covariate>& covariates() const override { return covariates_; }
  const std::vector<EpochRecord>& history() const override { return history_; }
  std::string device() const override { return device_.str(); }

  // The spec a model file was written with, on the CPU (a loaded model starts there).
  static Options loaded_spec(const Json& meta);

 protected:
  // Checks genes (at least one) and resources, and seeds LibTorch's global
  // generator with the spec's seed: initial weights draw from it, so a seed
  // fixes them too.
  ModelRecord(Options spec, std::vector<std::string> genes, std::vector<Covariate> covariates, Resources resources);

  // The cells' covariate codes checked against the model's covariates
  // (model_inputs.hpp covariate_columns).
  CovariateColumns columns_of(const CellCovariates& cells, size_t n_cells, bool skip_unknown_members = false) const;

  // The stratified training split of `columns`' cells (strata: combinations
  // of levels), recorded as annotations: the split's sizes
  // ("training_cells", "validation_cells") and per level of each covariate
  // ("training_cells:<level>" for a one-covariate model,
  // "training_cells:<covariate>=<level>" for several). Users read them back
  // (R's summary()).
  CellSplit split_and_annotate(const CovariateColumns& columns, size_t n_cells, double fraction, uint64_t seed);

  // Annotations and history of a loaded model, from its file's meta.
  void restore_record(const Json& meta);

  Options spec_, annotations_;
  std::vector<std::string> genes_;
  std::vector<Covariate> covariates_;
  Resources resources_;
  at::Device device_;
  std::vector<EpochRecord> history_;
};

}  // namespace exprflow
