// The GenerativeModel of every latent composition (space "latent" in
// models/compositions.hpp): a count VAE (models/count_vae.hpp) and, but for
// the plain "vae", a flow or DDPM model of its latent codes built from the
// stage tables like any composed network, with classifier-free guidance.
//
//   train     stage "vae": ELBO with KL warm-up on raw counts (vae_* options);
//             stage "latent": the objective on the standardised posterior
//             means of the same cells (plain options)
//   generate  z by the sampler (or the VAE's N(0, I) prior for "vae") ->
//             decoder -> counts drawn from the likelihood with a library size
//             drawn for the cell's condition
//   embed     posterior means
//   reconstruct  decoder at the posterior mean with the cell's observed
//             library size: expected counts and the log-likelihood of the
//             observed counts
//   transfer  the cell's posterior mean, moved by the flow (modes "joint",
//             "marginal", "contrast"; for "vae" these only decode under the
//             new covariates) or by latent arithmetic (mode "shift": plus the
//             difference of the training cells' mean codes between the two
//             combinations, data/covariate_centroids.hpp, scGen's recipe),
//             then decoded and drawn with the cell's own library size
//
// Inference uses averaged weights: the VAE's (vae_ema_decay, 0 = the
// weights themselves) and the latent network's EMA.
#pragma once

#include <memory>


#include "api/model_record.hpp"
#include "data/cell_batch.hpp"
#include "data/coexpression_stand_ins.hpp"
#include "data/covariate_centroids.hpp"
#include "data/perturbation_shift.hpp"
#include "data/library_sizes.hpp"
#include "data/split.hpp"
#include "exprflow/api.hpp"
#include "io/json.hpp"
#include "io/tensor_bundle.hpp"
#include "models/composed_network.hpp"
#include "models/count_vae.hpp"
#include "objective/objective.hpp"
#include "sample/samplers.hpp"

namespace exprflow {

class StageCheckpoints;
class DataParallelGroup;

class LatentModel final : public ModelRecord {
 public:
  LatentModel(Options spec, std::vector<std::string> genes, std::vector<Covariate> covariates,
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
  std::vector<std::string> token_names() const override;
  std::string to_bytes() const override;
  std::string adapter_bytes() const override;
  void apply_adapter(std::string_view bytes, const std::string& source) override;
  static std::unique_ptr<LatentModel> read_model(const TensorBundle& bundle);

  long parameter_count() const override;
  bool trained() const override;
  std::string default_sampler() const override;

  // Whether a flow / DDPM models the latent codes (all but "vae").
  bool has_latent_model() const { return objective_ != nullptr; }
  CountVaeImpl& vae() { return *vae_average_; }
  // The latent networks (has_latent_model() only): trained weights and EMA.
  ComposedNetworkImpl& latent_network() { return *network_; }
  ComposedNetworkImpl& latent_ema() { return *ema_; }

 private:
  TrainReport train_vae(const ExpressionSource& data, const CovariateColumns& columns, const CellSplit& split,
                        const Options& options, const TrainCallbacks& callbacks,
                        const StageCheckpoints& checkpoints, DataParallelGroup* group);
  TrainReport train_latent(const Posterior& q, const CovariateColumns& columns, const CellSplit& split,
                           const Options& options, const TrainCallbacks& callbacks,
                           const StageCheckpoints& checkpoints, DataParallelGroup* group);
  // Stand-ins (data/coexpression_stand_ins.hpp) for the members of `levels`
  // that no training cell has, for the levels the cells move to (`to`):
  // transfer mode "shift" to targets never perturbed in training. With no
  // `terms`, members that name one of the model's genes get theirs from the
  // co-expression of `data`'s cells; with `terms`, every such member gets
  // them from shared terms, among the trained targets that `terms` names.
  // The stand-ins are blended with the average of those trained targets,
  // with `stand_in_weight` on the stand-ins (-1: the weight that predicts
  // the trained targets best when each is left out in turn).
  void add_stand_ins(std::vector<PerturbationLevels>& levels, const CovariateColumns& to,
                     const ExpressionSource& data, const GeneTerms& terms, double stand_in_weight) const;
  // The training cells' mean codes per combination of levels (transfer mode "shift").
  void fit_centroids(const Posterior& q, const CovariateColumns& columns);
  // Their mean log1p-normalised expression per combination (transfer mode
  // "shift" with the observed response).
  void fit_expression_centroids(const ExpressionSource& data, const CovariateColumns& columns);
  CellBatch batch(const ExpressionSource& data, const std::vector<int>& cells, const CovariateColumns& columns) const;
  // (B, G) counts drawn from the decoder's likelihood at codes z (B, d) under
  // `covariates`, with the library sizes of cells lo, lo + 1, ... in
  // out.library_size.
  Tensor draw_counts(const Tensor& z, const Covariates& covariates, int lo, at::Generator& generator,
                     const GeneratedCells& out);
  // generate(): whether combinations no training cell had are sampled at a
  // seen one plus the latent shift (option "unseen"); which cells, at which
  // levels and shifts (centroids_: one covariate away, see
  // CovariateCentroids::nearest_seen); the shifts of `cells` as (B, d).
  bool unseen_by_shift(const std::string& unseen) const;
  void plan_unseen_combinations(const CovariateColumns& columns, CovariateColumns& sampled,
                                std::vector<std::vector<float>>& shifts) const;
  Tensor shift_rows(const std::vector<std::vector<float>>& shifts, const std::vector<int>& cells, int64_t d) const;
  // generate() with an anchored response (option transfer_response
  // "observed" or "both"): every cell generated at the levels it is sampled
  // under (`sampled`: a seen anchor for unseen combinations), then moved to
  // its asked-for levels by transfer() with the latent shift.
  GeneratedCells generate_at_anchors_then_move(const CellCovariates& conditions, const CovariateColumns& sampled,
                                               const Options& o);
  // Counts (B, G) and their log-normalised values into cells lo, lo + 1, ... of `out`.
  void store_counts(const Tensor& counts, int lo, GeneratedCells& out);
  // vae_input = "pca": fits the encoder's projection on (a subsample of) the training cells.
  void fit_input_projection(const ExpressionSource& data, const std::vector<int>& train);
  Posterior posteriors(const ExpressionSource& data);  // q(z | x) of every cell: (N, d) means and variances
  Tensor latent_codes(const ExpressionSource& data);  // (N, d) posterior means of every cell

  CountVae vae_{nullptr}, vae_average_{nullptr};
  std::unique_ptr<Objective> objective_;                // null for "vae"
  std::shared_ptr<ComposedNetworkImpl> network_, ema_;  // over the latent codes; null for "vae"
  GeneStandardiser identity_;  // batches hold log1p-normalised expression as is (the VAE projects it)
  Tensor z_mean_, z_sd_;    // (d,) standardisation of the codes the latent model learns
  Tensor z_low_, z_high_;   // (d,) clipping box, standardised units
  LibrarySizePools library_sizes_;
  CovariateCentroids centroids_;             // posterior means (unstandardised) per combination of levels
  CovariateCentroids expression_centroids_;  // mean log1p-normalised expression (G,) per combination
  TensorBundle adapter_;  // the last LoRA fine-tuning's adapter file (empty: none)
  bool vae_trained_ = false, latent_trained_ = false;
};

}  // namespace exprflow
