// Observation models of the decode stage: the likelihood heads a decoder's
// outputs are scored with and sampled from.
//
// One interface, four implementations (gaussian, nb, poisson, zinb), picked by
// name from an explicit table in likelihood.cpp: a decoder asks the chosen
// likelihood which parameters it needs, produces them, and the objective
// calls log_prob(). Count likelihoods parameterise the mean as a fraction of
// the cell's library (mu = rate * library, as in scVI) so a softmax head
// models composition and the library size stays an observed covariate.
//
// Sampling draws on the CPU with the caller's generator and moves the result
// to the parameters' device, so a seed gives the same counts on every device.
#pragma once

#include "exprflow/torch_prelude.hpp"

#include <memory>
#include <string>
#include <vector>

namespace exprflow {

// Parameters a decoder head produces for one minibatch; which fields a
// likelihood reads is its business (Likelihood::parameters()). Fields other
// than `rate` may be per gene (G,) or per cell and gene (B, G).
struct LikelihoodParams {
  Tensor rate;         // (B, G) count likelihoods: expected fraction of the cell's library per gene (rows of a softmax);
                       //        gaussian: the mean itself
  Tensor log_theta;    // (G,) or (B, G): NB / ZINB inverse dispersion, log scale
  Tensor zero_logits;  // (B, G): ZINB logit of the structural-zero probability ((G,) also accepted)
  Tensor log_scale;    // (G,) or (B, G): gaussian log standard deviation

  // The field called `name` ("rate", "log_theta", "zero_logits", "log_scale"),
  // so a decoder can fill the fields parameters() lists by name. An unknown
  // name is a std::invalid_argument listing the valid ones.
  Tensor& field(const std::string& name);
  const Tensor& field(const std::string& name) const;
  static std::vector<std::string> field_names();
};

class Likelihood {
 public:
  virtual ~Likelihood() = default;
  virtual std::string name() const = 0;
  // The fields of LikelihoodParams this likelihood needs, e.g. {"rate", "log_theta"}:
  // decoders size their heads from it. A needed field left undefined, or of a
  // shape that is neither (G,) nor (B, G), is a std::invalid_argument naming it.
  virtual std::vector<std::string> parameters() const = 0;
  // Elementwise log-likelihood (B, G) of observations x (B, G) given library
  // sizes (B,) (ignored by gaussian, may be undefined there); differentiable in
  // the params. x and library are converted to rate's dtype and device.
  virtual Tensor log_prob(const LikelihoodParams& p, const Tensor& x, const Tensor& library) const = 0;
  virtual Tensor mean(const LikelihoodParams& p, const Tensor& library) const = 0;      // (B, G)
  virtual Tensor variance(const LikelihoodParams& p, const Tensor& library) const = 0;  // (B, G)
  // Draws (B, G), not differentiable, with `generator` (a CPU generator: the
  // draws happen on the CPU and move to the params' device so a seed gives the
  // same values on every device).
  virtual Tensor sample(const LikelihoodParams& p, const Tensor& library, at::Generator& generator) const = 0;
  // Observations x (B, G) made under `from` carried to `to` keeping each
  // value's place in its distribution: counts at the same randomised quantile
  // (decode/count_quantiles.hpp; `generator` a CPU generator), gaussian values
  // at the same standard score. The counterfactual of a transfer that keeps a
  // cell's own noise; `from` == `to` returns x. Not differentiable.
  virtual Tensor carry(const LikelihoodParams& from, const LikelihoodParams& to, const Tensor& x,
                       const Tensor& library, at::Generator& generator) const = 0;
};

std::vector<std::string> likelihood_names();  // {"gaussian", "nb", "poisson", "zinb"}
// An unknown name is a std::invalid_argument listing the valid ones.
std::unique_ptr<Likelihood> make_likelihood(const std::string& name);

}  // namespace exprflow
