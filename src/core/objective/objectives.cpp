#include "objective/objectives.hpp"

#include <functional>
#include <map>

#include "models/named_registry.hpp"
#include "objective/ddpm.hpp"
#include "objective/flow_matching.hpp"

namespace exprflow {

namespace {

struct ObjectiveEntry {
  std::function<Options()> defaults;
  std::function<std::unique_ptr<Objective>(const Options&)> make;
};

const std::map<std::string, ObjectiveEntry>& objective_table() {
  static const std::map<std::string, ObjectiveEntry> table = {
      {"ddpm",
       {[] {
          return Options()
              .set("prediction", "v")     // "eps", "v" or "x0"; v: see objective/ddpm.hpp
              .set("schedule", "cosine")  // or "linear"
              .set("timesteps", 1000.0)
              .set("learn_sigma", 1.0)    // the decoder's scale head is the reverse variance
              .set("vlb_weight", 0.001)   // weight of the variational term that trains it
              .set("shared_time", 0.0);   // one step per covariate group (objective/flow_matching.hpp)
        },
        [](const Options& s) -> std::unique_ptr<Objective> {
          return std::make_unique<DdpmObjective>(NoiseSchedule(s.text("schedule"), s.integer("timesteps")),
                                                 s.text("prediction"), s.flag("learn_sigma", true),
                                                 s.number("vlb_weight"), s.flag("shared_time", false));
        }}},
      {"flow",
       // Uniform times without OT pairing: both alternatives were measured on
       // held-out cells and not kept (MMD / energy / kNN AUC / condition
       // accuracy). pathway_tokens, PBMC3k, seeds 1-3: ot_pairing 0.0096 /
       // 0.373 / 0.684 / 0.892 against 0.0097 / 0.377 / 0.684 / 0.894 (within
       // the seeds' spread; seed 2 worse on all four); seed 1,
       // logit-normal times 0.0096 / 0.379 / 0.679 / 0.878 and both together
       // 0.0099 / 0.392 / 0.690 / 0.881, against 0.0102 / 0.399 / 0.703 /
       // 0.890. latent_dit, example data, seeds 1-3: ot_pairing 0.0046 / 0.195
       // / 0.577 / 0.872 against 0.0047 / 0.198 / 0.584 / 0.889, condition
       // accuracy below the independent-NB baseline's 0.878.
       {[] {
          return Options()
              .set("time_distribution", "uniform")  // or "logit_normal"
              .set("logit_mean", 0.0)
              .set("logit_sd", 1.0)
              .set("ot_pairing", 0.0)    // minibatch OT pairing of noise and cells
              .set("shared_time", 0.0);  // one time per covariate group (objective/flow_matching.hpp)
        },
        [](const Options& s) -> std::unique_ptr<Objective> {
          return std::make_unique<FlowMatchingObjective>(s.text("time_distribution"), s.number("logit_mean"),
                                                         s.number("logit_sd"), s.flag("ot_pairing", false),
                                                         s.flag("shared_time", false));
        }}},
  };
  return table;
}

}  // namespace

std::vector<std::string> objective_names() { return registry_names(objective_table()); }

Options objective_defaults(const std::string& name) {
  return registry_entry(objective_table(), name, "objective").defaults();
}

std::unique_ptr<Objective> make_objective(const Options& spec) {
  return registry_entry(objective_table(), spec.text("objective"), "objective").make(spec);
}

}  // namespace exprflow
