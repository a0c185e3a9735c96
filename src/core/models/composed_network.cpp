#include "models/composed_network.hpp"

#include "data/covariate_groups.hpp"
#include "models/compositions.hpp"
#include "models/stages.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

ComposedNetworkImpl::ComposedNetworkImpl(const Options& spec, int64_t n_genes, std::vector<CovariateSpec> covariates,
                                         int64_t heads, const Resources& resources) {
  const Composition& parts = composition(spec.text("architecture"));
  tokenizer_ = register_module("tokenizer", make_tokenizer(parts.tokenizer, spec, n_genes, resources));
  const int64_t T = tokenizer_->n_tokens(), D = tokenizer_->token_dim();
  time_ = register_module("time", TimestepEmbedding(D));
  condition_ = register_module("condition", ConditionEncoder(std::move(covariates), D));
  backbone_ = register_module("backbone", make_backbone(parts.backbone, spec, T, D, resources));
  decoder_ = register_module("decoder", make_decoder(parts.decoder, spec, T, D, n_genes, heads, resources));
  if (spec.flag("input_skip", false)) {
    skip_ = register_module("skip", Linear(D, n_genes));
    torch::NoGradGuard no_grad;
    skip_->weight.zero_();
    skip_->bias.zero_();
  }
}

GeneOutput ComposedNetworkImpl::forward(const Tensor& x_t, const Tensor& t, const Covariates& covariates) {
  const TokenizedState state = tokenizer_->tokenize(x_t);
  const Tensor& tokens = state.tokens;  // (B, T, D)
  Tensor c, h;
  if (backbone_->condition_path() != "adaln") {
    // The time modulates; the covariates come as tokens.
    const Tensor time = time_->forward(t);                                                    // (B, D)
    const Tensor condition_tokens = condition_->tokens(covariates, x_t.size(0), x_t.device());  // (B, C, D)
    h = backbone_->forward_conditioned(tokens, time, condition_tokens);                        // (B, T, D)
    c = time + condition_tokens.sum(1);  // (B, D) for the input skip
  } else {
    c = time_->forward(t) + condition_->forward(covariates, x_t.size(0), x_t.device());  // (B, D)
    // A backbone that attends across cells attends within covariate groups.
    h = backbone_->attends_across_cells()
            ? backbone_->forward_groups(tokens, c, covariate_groups(covariates, x_t.size(0)))
            : backbone_->forward(tokens, c);  // (B, T, D)
  }
  GeneOutput out = decoder_->decode(h, x_t, state.token_genes);                         // (B, G) [x 2]
  if (skip_) out.value = out.value + skip_->forward(at::silu(c)) * x_t;                  // (B, G)
  return out;
}

Tensor ComposedNetworkImpl::embed(const Tensor& x) {
  if (tokenizer_->has_tokens()) return tokenizer_->content(x).mean(1);  // (B, D)
  Tensor t = at::zeros({x.size(0)}, x.options());  // clean
  if (backbone_->condition_path() != "adaln") {
    const Tensor null_tokens = condition_->tokens({}, x.size(0), x.device());  // (B, C, D) unconditional
    return backbone_->forward_conditioned(tokenizer_->forward(x), time_->forward(t), null_tokens).mean(1);  // (B, D)
  }
  Tensor c = time_->forward(t) + condition_->forward({}, x.size(0), x.device());  // (B, D) unconditional
  return backbone_->forward(tokenizer_->forward(x), c).mean(1);                   // (B, D)
}

Tensor ComposedNetworkImpl::tokens(const Tensor& x) {
  if (!tokenizer_->has_tokens()) return DenoisingNetworkImpl::tokens(x);
  return tokenizer_->content(x);  // (B, T, D)
}

Tensor ComposedNetworkImpl::token_weight_loadings() {
  if (!tokenizer_->has_tokens()) return DenoisingNetworkImpl::token_weight_loadings();
  return tokenizer_->weight_loadings();  // (T, G)
}

}  // namespace exprflow
