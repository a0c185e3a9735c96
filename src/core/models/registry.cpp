#include "models/registry.hpp"

#include <functional>
#include <map>
#include <stdexcept>

#include "models/named_registry.hpp"
#include "models/latent_token_dit.hpp"

namespace exprflow {

namespace {

struct Entry {
  std::function<Options()> defaults;
  std::function<std::shared_ptr<DenoisingNetworkImpl>(const Options&, int64_t, int64_t)> build;
};

// Settings every diffusion composition shares.
Options diffusion_defaults(const std::string& architecture) {
  Options o;
  o.set("architecture", architecture)
      .set("objective", "ddpm")
      .set("prediction", "v")       // or "eps"; v: see objective/ddpm.hpp
      .set("schedule", "cosine")   // or "linear"
      .set("timesteps", 1000.0)
      .set("learn_sigma", 1.0)     // use the decoder's scale head for the reverse variance
      .set("vlb_weight", 0.001)    // weight of the variational term that trains it
      .set("cfg_dropout", 0.1);    // fraction of conditions replaced by "null" in training
  return o;
}

const std::map<std::string, Entry>& registry() {
  static const std::map<std::string, Entry> entries = {
      {"latent_tokens",
       {[] {
          return diffusion_defaults("latent_tokens")
              .set("n_tokens", 64.0)
              .set("token_dim", 256.0)
              .set("n_layers", 8.0)
              .set("n_heads", 8.0)
              .set("hidden", 2048.0)
              .set("mlp_ratio", 4.0);
        },
        [](const Options& spec, int64_t genes, int64_t levels) {
          return std::static_pointer_cast<DenoisingNetworkImpl>(
              std::make_shared<LatentTokenDiTImpl>(spec, genes, levels));
        }}},
  };
  return entries;
}

const Entry& lookup(const std::string& architecture) {
  return registry_entry(registry(), architecture, "architecture");
}

}  // namespace

std::vector<std::string> registered_architectures() {
  return registry_names(registry());
}

Options architecture_defaults(const std::string& architecture) {
  return lookup(architecture).defaults();
}

std::shared_ptr<DenoisingNetworkImpl> build_network(const Options& spec, int64_t n_genes,
                                                    int64_t n_levels) {
  return lookup(spec.text("architecture")).build(spec, n_genes, n_levels);
}

}  // namespace exprflow
