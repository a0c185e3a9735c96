// Classifier-free guidance for models of several covariates.
//
// One scale guides the whole condition against the all-null one (samplers.hpp
// with_guidance). Scales per covariate guide each attribute on its own
// (compositional guidance, as CFGen asks for), here in the "given the others"
// form:
//
//   out = out(c) + sum_a (w_a - 1) * (out(c) - out(c without a))
//
// where "c without a" is the full condition with covariate a set to null.
// Each term is what attribute a adds given every other attribute, so the
// joint model the network learnt stays the anchor (all w_a = 1 gives it back
// unchanged), and for a model of one covariate the formula is exactly
// ordinary classifier-free guidance: out(null) + w (out(c) - out(null)).
// Training drops each covariate independently (condition_encoder.hpp
// drop_covariates), so every "c without a" branch is one the network saw.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "exprflow/api.hpp"
#include "models/denoising_network.hpp"

namespace exprflow {

struct GuidanceScales {
  double joint = 1.0;                          // used when per_covariate is empty
  std::map<std::string, double> per_covariate;  // covariate -> its scale (absent: 1)
};

// The sample option "guidance_scale": a number (joint), or nested options
// naming covariates of the model with a number each. Throws
// std::invalid_argument naming an unknown covariate or a non-finite scale.
GuidanceScales guidance_scales(const Options& sample_options, const std::vector<Covariate>& covariates);

// `network` with the guidance `scales` asks for; all branches run as one
// batched call. Without covariates in a call, the network as it is.
Denoiser with_covariate_guidance(Denoiser network, const GuidanceScales& scales);

}  // namespace exprflow
