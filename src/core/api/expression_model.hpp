// The GenerativeModel of every gene-space composition: a composed network
// (models/compositions.hpp) trained with its objective (flow or DDPM) on
// standardised log-normalised expression, sampled from its EMA weights with
// any sampler, and turned into counts by inverting the normalisation for a
// library size drawn from training cells of the same covariate levels.
//
// What it owns beside the networks: the per-gene scaling and clipping box,
// per-gene NB dispersions (for reconstruction likelihoods), the library-size
// pools by covariate levels, the gene share calibration of its samples
// (decode/gene_share_calibration.hpp) and the model file (spec, genes, history: the
// ModelRecord it derives from).
#pragma once

#include <functional>
#include <memory>


#include "data/cell_batch.hpp"
#include "data/library_sizes.hpp"
#include "decode/gene_share_calibration.hpp"
#include "api/model_inputs.hpp"
#include "api/model_record.hpp"
#include "exprflow/api.hpp"
#include "io/json.hpp"
#include "io/tensor_bundle.hpp"
#include "models/composed_network.hpp"
#include "objective/objective.hpp"
#include "sample/samplers.hpp"

namespace exprflow {

struct GeneScaling;

class ExpressionModel final : public ModelRecord {
 public:
  ExpressionModel(Options spec, std::vector<std::string> genes, std::vector<Covariate> covariates,
                  Resources resources = {});

  TrainReport train(const ExpressionSource& data, const CellCovariates& conditions,
                    const Options& train_options, const TrainCallbacks& callbacks) override;
  GeneratedCells generate(const CellCovariates& conditions, const Options& sample_options) override;
  std::vector<float> embed(const ExpressionSource& data, int* dims) override;
  std::vector<float> decode(const std::vector<float>& codes, int dims, const CellCovariates& conditions,
                            const Options& options) override;
  ReconstructedCells reconstruct(const ExpressionSource& data, const CellCovariates& conditions,
                                 const Options& options) override;
  GeneratedCells transfer(const ExpressionSource& data, const CellCovariates& from, const CellCovariates& to,
                          const Options& options) override;
  std::vector<float> token_activations(const ExpressionSource& data, int* n_tokens) override;
  std::vector<float> token_gene_loadings(const std::string& method, const ExpressionSource* data,
                                         int* n_tokens) override;
  std::string to_bytes() const override;
  std::string adapter_bytes() const override;
  void apply_adapter(std::string_view bytes, const std::string& source) override;
  // The model in an opened model file (see GenerativeModel::load()).
  static std::unique_ptr<ExpressionModel> read_model(const TensorBundle& bundle);

  long parameter_count() const override;
  bool trained() const override { return trained_; }
  std::string default_sampler() const override { return objective_->default_sampler(); }

  // The networks and the objective, for benchmarks and tests of the core.
  std::vector<std::string> token_names() const override { return network_->token_names(); }
  ComposedNetworkImpl& network() { return *network_; }
  ComposedNetworkImpl& ema_network() { return *ema_; }
  const Objective& objective() const { return *objective_; }

 private:
  void check_genes(const ExpressionSource& data) const;
  CellBatch batch(const ExpressionSource& data, const std::vector<int>& cells, const CovariateColumns& columns) const;
  Tensor scaled_batch(const ExpressionSource& data, const std::vector<int>& cells) const;  // (B, G)
  void set_scaling(const GeneScaling& scaling);
  SamplerSettings sampler_settings(const Options& sample_options) const;
  // The EMA network with the guidance sample option guidance_scale asks for.
  Denoiser sampling_network(const Options& sample_options);
  // Samples' log-normalised expression for the covariate rows `rows` of
  // `columns`, in batches of batch_size: (rows, G), row-major.
  std::vector<float> sample_expression(const Denoiser& network, const SamplerSettings& settings,
                                       const CovariateColumns& columns, const std::vector<int>& rows, long batch_size,
                                       at::Generator& generator);
  // The training cells' mean gene shares per combination of levels (the
  // calibration's targets: every training run sets those of its cells'
  // combinations), and the factors from a calibration sample of the trained
  // network for up to kCalibrationCells training cells' levels of each
  // combination. A LoRA adapter carries the calibration of the model it
  // tuned; transfer() does not calibrate (it keeps each cell's size and
  // moves its expression).
  void add_calibration_targets(const ExpressionSource& data, const CovariateColumns& columns,
                               const std::vector<int>& cells);
  void calibrate(const CovariateColumns& columns, const std::vector<int>& cells);
  static constexpr int kCalibrationCells = 100;
  // f applied to the scaled cells of `data` in batches: (B, G) -> (B, W); the
  // rows of all cells, row-major, with W in *width.
  std::vector<float> per_cell_rows(const ExpressionSource& data, int* width,
                                   const std::function<Tensor(const Tensor&)>& f) const;

  std::unique_ptr<Objective> objective_;
  std::shared_ptr<ComposedNetworkImpl> network_, ema_;
  GeneStandardiser scale_;
  Tensor low_, high_;              // (G,) x_0 clipping box, standardised units
  std::vector<double> theta_;      // NB inverse dispersion per gene
  LibrarySizePools library_sizes_;  // training cells' sizes with their covariate codes
  GeneShareCalibration calibration_;  // per combination of levels, factors on the samples' gene shares
  TensorBundle adapter_;            // the last LoRA fine-tuning's adapter file (empty: none)
  bool trained_ = false;
};

}  // namespace exprflow
