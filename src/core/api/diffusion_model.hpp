// GenerativeModel for the diffusion compositions of the registry: a network
// trained with the DDPM objective in (standardised) gene space, sampled with
// DDPM or DDIM from its EMA weights, and turned into counts through a
// negative binomial with per-gene dispersions from the training data.
#pragma once

#include <functional>
#include <memory>

#include <torch/serialize/input-archive.h>

#include "data/gene_scaling.hpp"
#include "io/json.hpp"
#include "exprflow/api.hpp"
#include "models/denoising_network.hpp"
#include "objective/ddpm.hpp"
#include "sample/samplers.hpp"

namespace exprflow {

class DiffusionModel final : public GenerativeModel {
 public:
  DiffusionModel(Options spec, std::vector<std::string> genes, std::vector<std::string> levels);

  TrainReport train(const ExpressionSource& data, const std::vector<int>& conditions,
                    const Options& train_options, const TrainCallbacks& callbacks) override;
  GeneratedCells generate(const std::vector<int>& conditions, const Options& sample_options) override;
  std::vector<float> embed(const ExpressionSource& data, int* dims) override;
  ReconstructedCells reconstruct(const ExpressionSource& data, const std::vector<int>& conditions,
                                 const Options& options) override;
  std::vector<float> token_activations(const ExpressionSource& data, int* n_tokens) override;
  std::vector<float> token_gene_loadings(const std::string& method, const ExpressionSource* data,
                                         int* n_tokens) override;
  void save(const std::string& path) const override;
  static std::unique_ptr<DiffusionModel> load_file(const std::string& path);

  Options& annotations() override { return annotations_; }
  const Options& spec() const override { return spec_; }
  const std::vector<std::string>& genes() const override { return genes_; }
  const std::vector<std::string>& condition_levels() const override { return levels_; }
  const std::vector<EpochRecord>& history() const override { return history_; }
  long parameter_count() const override;
  bool trained() const override { return trained_; }
  std::string device() const override { return device_.str(); }

  // The networks themselves, for benchmarks and tests of the core.
  DenoisingNetworkImpl& network() { return *network_; }
  DenoisingNetworkImpl& ema_network() { return *ema_; }

 private:
  static std::unique_ptr<DiffusionModel> read_model(torch::serialize::InputArchive& archive,
                                                    const json::Value& meta);
  void check_genes(const ExpressionSource& data) const;
  Tensor scaled_batch(const ExpressionSource& data, const std::vector<int>& cells) const;  // (B, G)
  Tensor condition_tensor(const std::vector<int>& levels) const;                          // (B,)
  void set_scaling(const GeneScaling& scaling);
  SamplerSettings sampler_settings(const Options& sample_options) const;
  // f applied to the scaled cells of `data` in batches: (B, G) -> (B, W); the
  // rows of all cells, row-major, with W in *width.
  std::vector<float> per_cell_rows(const ExpressionSource& data, int* width,
                                   const std::function<Tensor(const Tensor&)>& f) const;

  Options spec_, annotations_;
  std::vector<std::string> genes_, levels_;
  at::Device device_;
  std::shared_ptr<DenoisingNetworkImpl> network_, ema_;
  DdpmObjective objective_;
  Tensor mean_, sd_, low_, high_;  // (G,) per-gene scaling and x_0 clipping box
  std::vector<double> theta_;      // NB inverse dispersion per gene
  std::vector<std::vector<double>> library_sizes_;  // per level; the last holds all cells
  std::vector<EpochRecord> history_;
  bool trained_ = false;
};

}  // namespace exprflow
