// The composition table: an architecture name -> its stages (tokenizer,
// backbone, decoder), the space it models, its default objective and the
// settings it changes from the stages' defaults. `objective = "flow" | "ddpm"`
// is a setting of every composition.
//
// The full spec of a model is, in order of precedence: the user's settings >
// the composition's overrides > the objective's defaults > the stages'
// defaults > the settings shared by every model (seed, device, cfg_dropout).
#pragma once

#include <string>
#include <vector>

#include "exprflow/api.hpp"
#include "exprflow/options.hpp"

namespace exprflow {

struct Composition {
  std::string name, tokenizer, backbone, decoder;  // empty: no such stage (the plain "vae")
  // "gene": the diffusion / flow runs on standardised expression (ExpressionModel);
  // "latent": on the latent codes of a count VAE (LatentModel), whose settings
  // (models/count_vae.hpp) join the spec.
  std::string space;
  std::string objective;  // the default objective; empty for a model without one
  std::string description;
  Options overrides;      // settings that differ from the stages' defaults
  Options training;       // training options that differ from the defaults (see composition_train_options())
  // Resources (exprflow/api.hpp) the stages are built from, e.g. "gene_sets";
  // front ends ask their user for these.
  std::vector<std::string> resources = {};
};

std::vector<std::string> composition_names();
const Composition& composition(const std::string& name);  // unknown: error listing the valid ones

// The full default spec of an architecture with `objective` (empty: its default).
Options composition_defaults(const std::string& architecture, const std::string& objective = "");
// Training defaults of an architecture: the shared ones (epochs, batch_size,
// learning_rate, ...) with the composition's changes; latent models add the
// settings of their VAE stage (vae_epochs, ..., kl_warmup, kl_weight).
Options composition_train_options(const std::string& architecture);
// A user spec ("architecture", "objective" and overrides) completed with the
// defaults; unknown settings are an error naming them.
Options complete_spec(const Options& user_spec);

}  // namespace exprflow
