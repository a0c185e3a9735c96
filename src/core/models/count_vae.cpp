#include "models/count_vae.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "runtime/linear.hpp"
#include "tokenize/pathway_tokens.hpp"
#include "tokenize/set_pooling_tokens.hpp"

namespace exprflow {

namespace {

// Added to the posterior variance, as scVI does: keeps log(var) in the KL and
// the reparameterised draws finite when the encoder drives a variance to 0.
constexpr double kMinPosteriorVar = 1e-4;


}  // namespace

Options CountVaeSettings::defaults() {
  const CountVaeSettings d;
  Options o;
  o.set("latent_dim", static_cast<double>(d.latent_dim))
      .set("vae_hidden", static_cast<double>(d.hidden))
      .set("vae_layers", static_cast<double>(d.n_layers))
      .set("vae_dropout", d.dropout)
      .set("likelihood", d.likelihood)
      .set("dispersion", d.dispersion)
      .set("encode_condition", d.encode_condition ? 1.0 : 0.0)
      .set("decode_condition", d.decode_condition ? 1.0 : 0.0)
      .set("vae_input", d.input)
      .set("vae_input_pcs", static_cast<double>(d.input_pcs))
      .set("vae_encoder", d.encoder)
      .set("vae_token_hidden", static_cast<double>(d.token_hidden))
      .set("latent_per_token", static_cast<double>(d.latent_per_token))
      .set("vae_set_tokens", static_cast<double>(d.set_tokens))
      .set("vae_pool_heads", static_cast<double>(d.pool_heads));
  return o;
}

CountVaeSettings CountVaeSettings::from(const Options& spec) {
  CountVaeSettings s;
  s.latent_dim = spec.positive("latent_dim");
  s.hidden = spec.positive("vae_hidden");
  s.n_layers = spec.positive("vae_layers");
  s.dropout = spec.number("vae_dropout");
  if (s.dropout < 0 || s.dropout >= 1) throw std::invalid_argument("setting 'vae_dropout' must be in [0, 1)");
  s.likelihood = spec.text("likelihood");
  if (s.likelihood != "nb" && s.likelihood != "zinb" && s.likelihood != "poisson") {
    throw std::invalid_argument("setting 'likelihood' must be 'nb', 'zinb' or 'poisson', got '" + s.likelihood + "'");
  }
  s.dispersion = spec.text("dispersion");
  if (s.dispersion != "gene" && s.dispersion != "gene_condition") {
    throw std::invalid_argument("setting 'dispersion' must be 'gene' or 'gene_condition', got '" + s.dispersion + "'");
  }
  s.encode_condition = spec.flag("encode_condition", false);
  s.decode_condition = spec.flag("decode_condition", false);
  s.input = spec.text("vae_input");
  if (s.input != "log" && s.input != "pca") {
    throw std::invalid_argument("setting 'vae_input' must be 'pca' or 'log', got '" + s.input + "'");
  }
  s.input_pcs = spec.positive("vae_input_pcs");
  s.encoder = spec.text("vae_encoder", s.encoder);
  if (s.encoder != "mlp" && s.encoder != "gene_sets" && s.encoder != "set_tokens") {
    throw std::invalid_argument("setting 'vae_encoder' must be 'mlp', 'gene_sets' or 'set_tokens', got '" +
                                s.encoder + "'");
  }
  s.token_hidden = spec.has("vae_token_hidden") ? spec.positive("vae_token_hidden") : s.token_hidden;
  s.latent_per_token = spec.has("latent_per_token") ? spec.positive("latent_per_token") : s.latent_per_token;
  s.set_tokens = spec.has("vae_set_tokens") ? spec.positive("vae_set_tokens") : s.set_tokens;
  s.pool_heads = spec.has("vae_pool_heads") ? spec.positive("vae_pool_heads") : s.pool_heads;
  if (s.encoder != "mlp") {
    // Token encoders read genes, not principal axes mixing all of them.
    if (s.input != "log") {
      throw std::invalid_argument("setting 'vae_input' must be 'log' with vae_encoder = '" + s.encoder + "', got '" +
                                  s.input + "'");
    }
    if (s.encode_condition) {
      throw std::invalid_argument("setting 'encode_condition' is not available with vae_encoder = '" + s.encoder + "'");
    }
  }
  if (s.encoder == "set_tokens" && s.token_hidden % s.pool_heads != 0) {
    throw std::invalid_argument("setting 'vae_pool_heads' (" + std::to_string(s.pool_heads) +
                                ") must divide 'vae_token_hidden' (" + std::to_string(s.token_hidden) + ")");
  }
  return s;
}

int64_t CountVaeImpl::latent_dim_for(const CountVaeSettings& settings, const Resources& resources, int64_t n_genes) {
  if (settings.encoder == "set_tokens") return settings.set_tokens * settings.latent_per_token;
  if (settings.encoder != "gene_sets") return settings.latent_dim;
  return GeneSetLayout::from_resources(resources, n_genes).n_tokens() * settings.latent_per_token;
}

CountVaeImpl::CountVaeImpl(int64_t n_genes, std::vector<CovariateSpec> covariates, CountVaeSettings s,
                           const Resources& resources)
    : settings_(std::move(s)), n_genes_(n_genes), likelihood_(make_likelihood(settings_.likelihood)) {
  // A token encoder's tokenizer fixes the latent width (the gene-set
  // layout is built once: it matches every set against the genes).
  std::shared_ptr<TokenizerImpl> tokenizer;
  if (settings_.encoder == "gene_sets") {
    tokenizer = std::make_shared<PathwayTokensImpl>(GeneSetLayout::from_resources(resources, n_genes),
                                                    settings_.token_hidden);
  } else if (settings_.encoder == "set_tokens") {
    tokenizer = std::make_shared<SetPoolingTokensImpl>(n_genes, settings_.set_tokens, settings_.token_hidden,
                                                       settings_.pool_heads);
  }
  if (tokenizer) settings_.latent_dim = tokenizer->n_tokens() * settings_.latent_per_token;
  const int64_t H = settings_.hidden, d = settings_.latent_dim;
  auto stack = [&](const std::string& name, torch::nn::ModuleList& layers, torch::nn::ModuleList& norms) {
    layers = register_module(name + "_layers", torch::nn::ModuleList());
    norms = register_module(name + "_norms", torch::nn::ModuleList());
    norms->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({H})));
    for (int64_t k = 1; k < settings_.n_layers; ++k) {
      layers->push_back(Linear(H, H));
      norms->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({H})));
    }
  };
  int64_t n_inputs = n_genes;
  if (settings_.input == "pca") {
    n_inputs = std::min(settings_.input_pcs, n_genes);
    input_mean_ = register_buffer("input_mean", at::zeros({n_genes}));
    input_rotation_ = register_buffer("input_rotation", at::zeros({n_genes, n_inputs}));
  }
  if (tokenizer) {
    // "gene_set_encoder": the name models saved with the gene-set encoder hold.
    token_encoder_ = register_module(settings_.encoder == "gene_sets" ? "gene_set_encoder" : "set_token_encoder",
                                     TokenEncoder(std::move(tokenizer), settings_.latent_per_token, settings_.dropout));
  } else {
    encoder_in_ = register_module("encoder_in", Linear(n_inputs, H));
    stack("encoder", encoder_layers_, encoder_norms_);
    encoder_out_ = register_module("encoder_out", Linear(H, 2 * d));
  }
  decoder_in_ = register_module("decoder_in", Linear(d, H));
  stack("decoder", decoder_layers_, decoder_norms_);
  rate_out_ = register_module("rate_out", Linear(H, n_genes));
  if (settings_.likelihood == "zinb") zero_out_ = register_module("zero_out", Linear(H, n_genes));
  if (settings_.encode_condition) encoder_condition_ = register_module("encoder_condition", ConditionEncoder(covariates, H));
  if (settings_.decode_condition) decoder_condition_ = register_module("decoder_condition", ConditionEncoder(covariates, H));
  if (settings_.likelihood != "poisson") {
    if (settings_.dispersion == "gene_condition") {
      if (covariates.empty()) {
        throw std::invalid_argument("setting 'dispersion' = 'gene_condition' needs a condition");
      }
      dispersion_covariate_ = covariates.front().name;
      log_theta_ = register_parameter("log_theta", at::zeros({covariates.front().n_levels + 1, n_genes}));
    } else {
      log_theta_ = register_parameter("log_theta", at::zeros({n_genes}));
    }
  }
}

Tensor CountVaeImpl::hidden_stack(torch::nn::ModuleList layers, torch::nn::ModuleList norms, Tensor h) {
  const double p = settings_.dropout;
  h = torch::dropout(at::silu(norms[0]->as<torch::nn::LayerNorm>()->forward(h)), p, is_training());  // (B, H)
  for (size_t k = 0; k < layers->size(); ++k) {
    h = layers[k]->as<Linear>()->forward(h);                                                       // (B, H)
    h = torch::dropout(at::silu(norms[k + 1]->as<torch::nn::LayerNorm>()->forward(h)), p, is_training());
  }
  return h;
}

void CountVaeImpl::set_input_projection(const Tensor& mean, const Tensor& rotation) {
  if (!input_rotation_.defined()) throw std::logic_error("the VAE reads no projection (vae_input is not 'pca')");
  torch::NoGradGuard no_grad;
  // Fewer axes than asked (few cells): the unused inputs stay 0.
  input_rotation_.zero_();
  input_rotation_.slice(1, 0, rotation.size(1)).copy_(rotation);
  input_mean_.copy_(mean);
}

Posterior CountVaeImpl::encode(const Tensor& log_expression, const Covariates& c) {
  if (token_encoder_) {
    auto [mean, log_var] = token_encoder_->forward(log_expression);  // (B, T, k) each
    const int64_t B = log_expression.size(0);
    return {mean.reshape({B, -1}), log_var.reshape({B, -1}).clamp_max(10.0).exp() + kMinPosteriorVar};  // (B, d)
  }
  // (x - mean) R = x R - mean R: no centred (B, G) copy per batch.
  const Tensor input = input_rotation_.defined()
                           ? log_expression.matmul(input_rotation_) - input_mean_.matmul(input_rotation_)  // (B, k)
                           : log_expression;                                                               // (B, G)
  Tensor h = encoder_in_->forward(input);  // (B, H)
  if (encoder_condition_) h = h + encoder_condition_->forward(c, h.size(0), h.device());
  Tensor out = encoder_out_->forward(hidden_stack(encoder_layers_, encoder_norms_, h));  // (B, 2d)
  const int64_t d = settings_.latent_dim;
  // Clamped so exp() cannot overflow on an outlier cell early in training.
  Tensor log_var = out.slice(1, d, 2 * d).clamp_max(10.0);  // (B, d)
  return {out.slice(1, 0, d), log_var.exp() + kMinPosteriorVar};
}

std::vector<std::string> CountVaeImpl::token_names() const {
  return token_encoder_ ? token_encoder_->token_names() : std::vector<std::string>{};
}

Tensor CountVaeImpl::token_means(const Tensor& log_expression) {
  if (!token_encoder_) throw std::logic_error("the VAE's encoder has no tokens");
  return token_encoder_->forward(log_expression).first;  // (B, T, k)
}

Tensor CountVaeImpl::token_weight_loadings() const {
  if (!token_encoder_) throw std::logic_error("the VAE's encoder has no tokens");
  return token_encoder_->weight_loadings();  // (T, G)
}

LikelihoodParams CountVaeImpl::decode(const Tensor& z, const Covariates& c) {
  Tensor h = decoder_in_->forward(z);  // (B, H)
  if (decoder_condition_) h = h + decoder_condition_->forward(c, h.size(0), h.device());
  h = hidden_stack(decoder_layers_, decoder_norms_, h);
  LikelihoodParams p;
  p.rate = at::softmax(rate_out_->forward(h), 1);  // (B, G), rows sum to 1
  if (zero_out_) p.zero_logits = zero_out_->forward(h);  // (B, G)
  if (log_theta_.defined()) {
    if (dispersion_covariate_.empty()) {
      p.log_theta = log_theta_ * kDispersionStep;  // (G,)
    } else {
      // Null codes (-1) use the last row, trained on the cells whose
      // condition is unknown (none, unless dropped by the caller).
      const int64_t null_row = log_theta_.size(0) - 1;
      auto it = c.find(dispersion_covariate_);
      Tensor codes = it == c.end() ? at::full({z.size(0)}, -1, at::TensorOptions().dtype(at::kLong).device(z.device()))
                                   : it->second;
      // So does a perturbation combination the model has no level for.
      codes = at::where((codes < 0) | (codes >= null_row), at::full_like(codes, null_row), codes);  // (B,)
      p.log_theta = log_theta_.index_select(0, codes) * kDispersionStep;  // (B, G)
    }
  }
  return p;
}

ElboTerms CountVaeImpl::elbo(const Tensor& log_expression, const Tensor& counts, const Tensor& library,
                             const Covariates& c, at::Generator& generator) {
  const Posterior q = encode(log_expression, c);
  Tensor noise = at::normal(0.0, 1.0, q.mean.sizes(), generator, at::TensorOptions().dtype(at::kFloat))
                     .to(q.mean.device());                                                // (B, d)
  Tensor z = q.mean + q.var.sqrt() * noise;                                               // (B, d)
  Tensor reconstruction = -likelihood_->log_prob(decode(z, c), counts, library).sum(1);   // (B,)
  Tensor kl = 0.5 * (q.var + q.mean.pow(2) - 1.0 - q.var.log()).sum(1);                  // (B,)
  return {reconstruction, kl};
}

Tensor CountVaeImpl::log_likelihood_at_mean(const Tensor& log_expression, const Tensor& counts,
                                            const Tensor& library, const Covariates& c) {
  return likelihood_->log_prob(decode(encode(log_expression, c).mean, c), counts, library).sum(1);  // (B,)
}

Tensor CountVaeImpl::marginal_log_likelihood(const Posterior& q, const Tensor& counts, const Tensor& library,
                                             const Covariates& c, int64_t samples, at::Generator& generator) {
  if (samples < 1) throw std::invalid_argument("importance_samples must be at least 1");
  const Tensor sd = q.var.sqrt();                                              // (B, d)
  const double log_2pi = 1.8378770664093453;  // log(2 pi)
  const Tensor log_q_norm = -0.5 * (q.var.log() + log_2pi).sum(1);             // (B,)
  std::vector<Tensor> weights;                                                 // log w_k (B,) per draw
  weights.reserve(static_cast<size_t>(samples));
  for (int64_t k = 0; k < samples; ++k) {
    Tensor noise = at::normal(0.0, 1.0, q.mean.sizes(), generator, at::TensorOptions().dtype(at::kFloat))
                       .to(q.mean.device());                                   // (B, d)
    Tensor z = q.mean + sd * noise;                                            // (B, d)
    Tensor log_px = likelihood_->log_prob(decode(z, c), counts, library).sum(1);  // (B,)
    Tensor log_pz = -0.5 * (z.pow(2) + log_2pi).sum(1);                        // (B,)
    Tensor log_qz = log_q_norm - 0.5 * noise.pow(2).sum(1);                    // (B,)
    weights.push_back((log_px + log_pz - log_qz).to(at::kDouble));
  }
  return at::logsumexp(at::stack(weights, 1), 1) - std::log(static_cast<double>(samples));  // (B,)
}

}  // namespace exprflow
