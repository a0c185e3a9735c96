// The count VAE: an autoencoder of raw counts with a Gaussian posterior and
// a count likelihood (NB, ZINB or Poisson), the first stage of every latent
// model (api/latent_model.hpp). scVI's module contract, in one file:
//
//   inference   x (log1p-normalised, B x G) [+ condition] -> MLP -> q(z|x) = N(mean, var)   (B, d)
//   generative  z [+ condition] -> MLP -> softmax over genes = rate (the expected share of
//               the cell's library per gene); expected counts = rate * OBSERVED library size;
//               dispersion per gene (or per gene and condition); ZINB adds zero logits
//   loss        ELBO = -log p(counts | z, library) + beta * KL(q(z|x) || N(0, I)) per cell,
//               beta warmed up from 0 (KL warm-up) by the caller
//
// Conditioning the encoder / decoder is optional and off by default: the
// latent code then keeps the cell type, which the embedding and the latent
// flow (conditional on it) both want.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "condition/condition_encoder.hpp"
#include "decode/likelihood.hpp"
#include "exprflow/api.hpp"
#include "exprflow/options.hpp"
#include "models/token_encoder.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

// The embedding (posterior means) against PCA on held-out PBMC3k
// (compare_latent.R, seeds 1-3; kNN label transfer / k-means ARI): PCA 0.901
// / 0.663, these defaults 0.891 / 0.651. Tried and not kept, as none reaches
// PCA's label transfer: likelihood "zinb" 0.895 / 0.644, "poisson" 0.897 /
// 0.607; latent_dim 32 at learning rate 3e-4 0.895 / 0.664 (400 epochs:
// 0.897 / 0.662), at 5e-4 0.896 / 0.649; one hidden layer 0.886 / 0.649;
// kl_weight 0.5 0.893 / 0.645; input_pcs 30 0.896 / 0.647; dropout 0 0.888 /
// 0.641 (these three against 0.891 / 0.651 for the defaults in the same run).
// The metrics move by about 0.01 with the split and with how PCA is taken (30
// or 50 axes, genes scaled or not), the gap's own size. On PBMC3k the label
// transfer it loses sits at the naive / memory CD4+ T boundary, of labels made
// by clustering in PCA space (3 stratified splits: memory CD4+ T 0.72-0.81
// against PCA's 0.78-0.84, naive 0.85-0.89 against 0.88-0.92; B, NK, CD8+ T and
// FCGR3A+ monocytes transfer better). The KL weight (a training setting,
// kl_weight) trades the embedding against counterfactual transfer. At 2, seeds
// 1-5: PBMC3k kNN / ARI / held-out log-likelihood 0.892 / 0.675 / -1557.7
// against 0.892 / 0.653 / -1561.7 at 1 (PCA 0.903 / 0.672; 3: 0.894 / 0.676; 5:
// 0.889 / 0.686); example data 0.866 / 0.680 / -1591.7 against 0.858 / 0.640 /
// -1595.9 (PCA 0.867 / 0.613). But Papalexi 2021's knock-outs, transferred with
// the default response (transfer_cells()), lose: one guide held out, delta
// Pearson / top-50 DEGs / DEG overlap / energy / PDS 0.373 / 0.474 / 0.349 /
// 0.203 / 0.322 against 0.379 / 0.477 / 0.354 / 0.177 / 0.302; replicates held
// out 0.322 / 0.410 / 0.315 / 0.209 against 0.333 / 0.418 / 0.327 / 0.183,
// behind the mean-shift baseline (0.327 / 0.392 / 0.323 / 0.187); Kang 2018 the
// same (0.943 / 0.877 top-100 DEGs). Not the default. Also tried at weight 1:
// the encoder reading principal axes of genes scaled to unit variance, 0.897 /
// 0.630 (at weight 2 0.897 / 0.642). Seeds 1-5 against the defaults' 0.892 /
// 0.653 / -1561.7, none reaching PCA on both: dropout 0.2 0.899 / 0.652 /
// -1558.7, 0.3 0.895 / 0.649, 0 0.891 / 0.640; input_pcs 30 0.897 / 0.643,
// 100 0.897 / 0.644; one hidden layer 0.889 / 0.655 (with dropout 0.2 0.891 /
// 0.644); learning rate 3e-3 0.893 / 0.663 / -1566.5; 100 epochs 0.891 /
// 0.662, 400 0.893 / 0.644. Width, seeds 1-3 (scratch script beside
// compare_latent.R, one compare_models() call per seed): vae_hidden 512
// 0.890 / 0.627, 128 0.888 / 0.638, against 0.891 / 0.651 at the default
// 256 (PCA 0.901 / 0.663). Training, seeds 1-5 (scratch, one
// compare_models() call per seed; kNN / ARI / held-out log-likelihood):
// ema_decay 0.99 0.895 / 0.662 / -1561.5 (0.995 and 0.999 give the same
// figures: the VAE stops early, best epoch 29-51 of ~14 steps, where the
// EMA's warm-up (1 + step) / (10 + step) caps the decay below 0.99); with
// vae_dropout 0.2 0.899 / 0.664 / -1558.5, against the defaults' 0.892 /
// 0.653 / -1561.7 and PCA's 0.903 / 0.672. On the example data that pair
// loses label transfer (0.855 / 0.673 / -1592.0 against 0.858 / 0.640 /
// -1595.9; PCA 0.867 / 0.613) and on Papalexi's held-out guides it loses a
// little (delta Pearson / DEG delta / DEG overlap / energy / PDS 0.377 /
// 0.477 / 0.353 / 0.182 / 0.310 against 0.379 / 0.477 / 0.354 / 0.177 /
// 0.302 in the same run), so not kept. Without early stopping (patience 0,
// all 200 epochs) the VAE overfits: with the EMA 0.887 / 0.576 / -1593.6,
// with dropout 0.2 too 0.897 / 0.593 / -1567.5. Seeds 1-3 (defaults 0.891 /
// 0.651): batch_size 64 0.891 / 0.635, kl_warmup 0.5 0.893 / 0.645,
// weight_decay 0 0.888 / 0.651. Seeds 1-5 (compare_latent.R with the
// setting, or `training =` for the training ones): latent_dim 10 0.895 /
// 0.647 / -1561.6; kl_weight 2 with vae_dropout 0.2 0.894 / 0.679 /
// -1558.4, and with ema_decay 0.99 as well 0.895 / 0.673 / -1557.9 (PCA
// 0.903 / 0.672): the k-means ARI reaches PCA's, the kNN transfer does
// not; it loses on seeds 2 and 5 (0.873-0.878 against 0.901, 0.888-0.890
// against 0.909) and ties PCA on the other three.
struct CountVaeSettings {
  int64_t latent_dim = 16;
  int64_t hidden = 256;
  int64_t n_layers = 2;          // hidden layers of the encoder and of the decoder
  double dropout = 0.1;
  std::string likelihood = "nb";  // "nb", "zinb", "poisson"
  std::string dispersion = "gene";  // "gene" or "gene_condition" (levels of the first covariate)
  bool encode_condition = false;
  bool decode_condition = false;
  // What the encoder reads: "pca", log1p-normalised expression projected on
  // the training cells' first input_pcs principal axes; or "log", all of it.
  // Measured (3 seeds, held-out kNN label transfer of the embedding): 0.899
  // with "pca" against 0.883 with "log" on PBMC3k (PCA itself 0.901), 0.863
  // against 0.851 on the example data (PCA 0.865): the projection drops the
  // noise of 2,000 sparse inputs before the MLP.
  std::string input = "pca";
  int64_t input_pcs = 50;
  // "mlp": the MLP above over the whole input. Token encoders
  // (models/token_encoder.hpp; they read log expression, and set latent_dim
  // to tokens x latent_per_token): "gene_sets", one latent token per gene
  // set, each from its own genes alone (needs the "gene_sets" resource);
  // "set_tokens", gene + value tokens pooled into set_tokens tokens by
  // cross-attention (scLDM's encoder).
  std::string encoder = "mlp";
  int64_t token_hidden = 32;     // width of each token inside the encoder
  int64_t latent_per_token = 2;  // latent values per token
  int64_t set_tokens = 8;        // "set_tokens": pooled tokens (a 16-d code at 2 values each)
  int64_t pool_heads = 4;        // "set_tokens": heads of the pooling attention

  // From a model spec (latent_dim, vae_hidden, vae_layers, vae_dropout,
  // likelihood, dispersion, encode_condition, decode_condition, vae_input,
  // vae_encoder, vae_token_hidden, latent_per_token, vae_set_tokens,
  // vae_pool_heads), checked.
  static CountVaeSettings from(const Options& spec);
  // Those settings with their defaults, for the composition table.
  static Options defaults();
};

struct Posterior {
  Tensor mean;  // (B, d)
  Tensor var;   // (B, d)
};

struct ElboTerms {
  Tensor reconstruction;  // (B,) -log p(counts | z) in nats
  Tensor kl;              // (B,) KL(q(z|x) || N(0, I)) in nats
};

class CountVaeImpl : public torch::nn::Module {
 public:
  // log theta = kDispersionStep * (the stored parameter). Adam moves every
  // parameter by about the learning rate per step whatever its gradient, so a
  // plain log theta starting at 0 could only reach ~1 (theta ~ 2.7) in the
  // ~1,000 steps a VAE gets on 1,000 cells at 1e-3: the dispersion stayed far
  // too high, and counts drawn from the decoder were overdispersed (on the
  // example data, generated cells' energy distance 0.54 against 0.22 for the
  // same model with a Poisson likelihood). Scaled, it moves 10x as fast.
  static constexpr double kDispersionStep = 10.0;

  // `covariates`: the categorical covariates the encoder / decoder / dispersion
  // may condition on (the model's condition).
  // `resources`: the model's; encoder = "gene_sets" reads resources["gene_sets"].
  CountVaeImpl(int64_t n_genes, std::vector<CovariateSpec> covariates, CountVaeSettings settings,
               const Resources& resources = {});

  // The width of the latent code a VAE with these settings would have:
  // settings.latent_dim, or for a token encoder tokens x latent_per_token.
  static int64_t latent_dim_for(const CountVaeSettings& settings, const Resources& resources, int64_t n_genes);

  // vae_input = "pca": the projection the encoder reads, fitted by the caller
  // on training cells (saved with the module as buffers).
  void set_input_projection(const Tensor& mean, const Tensor& rotation);  // (G,), (G, k)

  Posterior encode(const Tensor& log_expression, const Covariates& c);  // (B, G) -> (B, d) x 2
  LikelihoodParams decode(const Tensor& z, const Covariates& c);       // (B, d) -> rate (B, G), ...
  // The ELBO terms of one minibatch; z is drawn with `generator` (reparameterised).
  ElboTerms elbo(const Tensor& log_expression, const Tensor& counts, const Tensor& library, const Covariates& c,
                 at::Generator& generator);
  // log p(counts | z = posterior mean) per cell (B,): the reconstruction
  // likelihood, in nats, comparable with a baseline's log-likelihood.
  Tensor log_likelihood_at_mean(const Tensor& log_expression, const Tensor& counts, const Tensor& library,
                                const Covariates& c);
  // log p(counts | library) per cell (B,): the marginal likelihood over the
  // prior of z, estimated by importance sampling with the posterior as the
  // proposal (`samples` draws; the IWAE bound, which tightens as samples
  // grow). Unlike the likelihood at the posterior mean, the code is not
  // read off the cell itself, so it compares with a baseline's likelihood.
  // `q`: the cells' posterior, encode(log_expression, c).
  Tensor marginal_log_likelihood(const Posterior& q, const Tensor& counts, const Tensor& library, const Covariates& c,
                                 int64_t samples, at::Generator& generator);

  // Token encoders only (else empty / an error): their token names, each
  // token's posterior mean (B, G) -> (B, T, k), and the gene loadings of the
  // tokenizer's weights (T, G; gene sets only).
  std::vector<std::string> token_names() const;
  Tensor token_means(const Tensor& log_expression);
  Tensor token_weight_loadings() const;
  bool has_encoder_tokens() const { return !token_encoder_.is_empty(); }

  const Likelihood& likelihood() const { return *likelihood_; }
  const CountVaeSettings& settings() const { return settings_; }

 private:
  Tensor hidden_stack(torch::nn::ModuleList layers, torch::nn::ModuleList norms, Tensor h);

  CountVaeSettings settings_;
  int64_t n_genes_;
  std::unique_ptr<Likelihood> likelihood_;
  Linear encoder_in_{nullptr}, encoder_out_{nullptr};  // G -> H, H -> 2d
  torch::nn::ModuleList encoder_layers_{nullptr}, encoder_norms_{nullptr};
  TokenEncoder token_encoder_{nullptr};  // a token encoder: replaces the MLP encoder
  ConditionEncoder encoder_condition_{nullptr};  // (B, H), added after encoder_in_
  Linear decoder_in_{nullptr}, rate_out_{nullptr}, zero_out_{nullptr};  // d -> H, H -> G
  torch::nn::ModuleList decoder_layers_{nullptr}, decoder_norms_{nullptr};
  ConditionEncoder decoder_condition_{nullptr};
  Tensor log_theta_;  // (G,) or (L + 1, G): per gene [and condition; row L: null]
  Tensor input_mean_, input_rotation_;  // (G,), (G, k): vae_input = "pca" only
  std::string dispersion_covariate_;
};
TORCH_MODULE(CountVae);

}  // namespace exprflow
