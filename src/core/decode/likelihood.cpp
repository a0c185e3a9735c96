#include "decode/likelihood.hpp"

#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>

#include "decode/count_quantiles.hpp"
#include "decode/nb_log_prob.hpp"
#include "models/named_registry.hpp"

namespace exprflow {

namespace {

// Added to mu inside logs, so expected counts of exactly zero stay finite (as
// in scVI; theta needs none: it is exp() of a clamped log). It shifts
// log-probabilities by at most x * eps / mu and their total mass by a factor
// of about exp(eps). The same as the NB's (decode/nb_log_prob.hpp).
constexpr double kEps = kNbEps;
// log theta is clamped to this range before exp() (its gradient is zero
// outside): below, theta would underflow (float32: at -104) and lgamma(theta)
// become inf; above, theta would overflow (float32: at 89). Both ends are
// already a point mass at zero / a Poisson to within rounding.
constexpr double kMinLogTheta = -30.0;
constexpr double kMaxLogTheta = 40.0;
// Draws skip the gamma mixing above this inverse dispersion: it changes the
// rate by a relative 1/sqrt(theta) < 1e-4.
constexpr double kDrawAsPoissonTheta = 1e8;

std::string shape_of(const Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

// The fields `lik` needs, checked: defined and floating point; rate (B, G),
// the others (G,) or (B, G) so they broadcast against it.
const Tensor& checked_rate(const Likelihood& lik, const LikelihoodParams& p) {
  const std::string who = "likelihood '" + lik.name() + "'";
  for (const std::string& name : lik.parameters()) {
    const Tensor& t = p.field(name);
    if (!t.defined()) {
      throw std::invalid_argument(who + " needs parameter '" + name + "', which is undefined");
    }
    if (!t.is_floating_point()) {
      throw std::invalid_argument(who + ": parameter '" + name + "' must be floating point, got " +
                                  std::string(c10::toString(t.scalar_type())));
    }
  }
  const Tensor& rate = p.rate;
  if (rate.dim() != 2) {
    throw std::invalid_argument(who + ": parameter 'rate' must be (B, G), got " + shape_of(rate));
  }
  const int64_t B = rate.size(0), G = rate.size(1);
  for (const std::string& name : lik.parameters()) {
    if (name == "rate") continue;
    const Tensor& t = p.field(name);
    const bool per_gene = t.dim() == 1 && t.size(0) == G;
    const bool per_cell = t.dim() == 2 && (t.size(0) == B || t.size(0) == 1) && t.size(1) == G;
    if (!per_gene && !per_cell) {
      throw std::invalid_argument(who + ": parameter '" + name + "' must be (G,) or (B, G) with (B, G) = " +
                                  shape_of(rate) + ", got " + shape_of(t));
    }
  }
  return rate;
}

Tensor checked_observations(const Likelihood& lik, const Tensor& rate, const Tensor& x) {
  if (!x.defined() || x.sizes() != rate.sizes()) {
    throw std::invalid_argument("likelihood '" + lik.name() + "': observations must be " + shape_of(rate) +
                                " like 'rate', got " + (x.defined() ? shape_of(x) : "undefined"));
  }
  return x.to(rate.options());  // (B, G)
}

// mu = rate * library: the expected counts.
Tensor expected_counts(const Likelihood& lik, const LikelihoodParams& p, const Tensor& library) {
  const Tensor& rate = checked_rate(lik, p);
  if (!library.defined() || library.dim() != 1 || library.size(0) != rate.size(0)) {
    throw std::invalid_argument("likelihood '" + lik.name() + "': library sizes must be (B,) = (" +
                                std::to_string(rate.size(0)) + ",), got " +
                                (library.defined() ? shape_of(library) : "undefined"));
  }
  return rate * library.to(rate.options()).unsqueeze(1);  // (B, G)
}

Tensor inverse_dispersion(const LikelihoodParams& p) {
  return p.log_theta.clamp(kMinLogTheta, kMaxLogTheta).exp();  // (G,) or (B, G)
}

Tensor poisson_log_prob(const Tensor& x, const Tensor& mu) {
  return x * at::log(mu + kEps) - mu - at::lgamma(x + 1);  // (B, G)
}

// The dtype draws are made in: the CPU samplers want float or double.
at::ScalarType draw_dtype(const Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

Tensor to_cpu(const Tensor& t, at::ScalarType dtype) {
  return t.detach().to(at::kCPU, dtype);
}

void check_generator(const Likelihood& lik, const at::Generator& generator) {
  if (!generator.defined() || !generator.device().is_cpu()) {
    throw std::invalid_argument("likelihood '" + lik.name() + "': sample() needs a CPU generator");
  }
}

// Gamma-Poisson mixture on the CPU: lambda ~ Gamma(theta, scale mu / theta),
// x ~ Poisson(lambda). mu, theta: CPU tensors, theta broadcast to mu.
Tensor draw_nb(const Tensor& mu, const Tensor& theta, at::Generator& generator) {
  const Tensor shape = theta.expand_as(mu).contiguous();                // (B, G)
  const Tensor gamma = at::_standard_gamma(shape, generator);           // (B, G), mean theta
  const Tensor lambda = at::where(shape > kDrawAsPoissonTheta, mu, gamma * (mu / shape));  // (B, G)
  return at::poisson(lambda, generator);                                // (B, G)
}

class Poisson final : public Likelihood {
 public:
  std::string name() const override { return "poisson"; }
  std::vector<std::string> parameters() const override { return {"rate"}; }
  Tensor log_prob(const LikelihoodParams& p, const Tensor& x, const Tensor& library) const override {
    const Tensor mu = expected_counts(*this, p, library);
    return poisson_log_prob(checked_observations(*this, p.rate, x), mu);
  }
  Tensor mean(const LikelihoodParams& p, const Tensor& library) const override {
    return expected_counts(*this, p, library);
  }
  Tensor variance(const LikelihoodParams& p, const Tensor& library) const override {
    return expected_counts(*this, p, library);
  }
  Tensor sample(const LikelihoodParams& p, const Tensor& library, at::Generator& generator) const override {
    check_generator(*this, generator);
    const Tensor mu = expected_counts(*this, p, library);
    return at::poisson(to_cpu(mu, draw_dtype(mu)), generator).to(mu.options());
  }
  Tensor carry(const LikelihoodParams& from, const LikelihoodParams& to, const Tensor& x, const Tensor& library,
               at::Generator& generator) const override {
    check_generator(*this, generator);
    const Tensor mu = expected_counts(*this, to, library);
    return carry_counts(checked_observations(*this, from.rate, x), expected_counts(*this, from, library), {}, {},
                        mu, {}, {}, generator).to(mu.options());
  }
};

class NegativeBinomial final : public Likelihood {
 public:
  std::string name() const override { return "nb"; }
  std::vector<std::string> parameters() const override { return {"rate", "log_theta"}; }
  Tensor log_prob(const LikelihoodParams& p, const Tensor& x, const Tensor& library) const override {
    const Tensor mu = expected_counts(*this, p, library);
    return nb_log_prob(checked_observations(*this, p.rate, x), mu, inverse_dispersion(p));
  }
  Tensor mean(const LikelihoodParams& p, const Tensor& library) const override {
    return expected_counts(*this, p, library);
  }
  Tensor variance(const LikelihoodParams& p, const Tensor& library) const override {
    const Tensor mu = expected_counts(*this, p, library);
    return mu + mu * mu / inverse_dispersion(p);  // (B, G)
  }
  Tensor sample(const LikelihoodParams& p, const Tensor& library, at::Generator& generator) const override {
    check_generator(*this, generator);
    const Tensor mu = expected_counts(*this, p, library);
    const at::ScalarType dtype = draw_dtype(mu);
    return draw_nb(to_cpu(mu, dtype), to_cpu(inverse_dispersion(p), dtype), generator).to(mu.options());
  }
  Tensor carry(const LikelihoodParams& from, const LikelihoodParams& to, const Tensor& x, const Tensor& library,
               at::Generator& generator) const override {
    check_generator(*this, generator);
    const Tensor mu = expected_counts(*this, to, library);
    return carry_counts(checked_observations(*this, from.rate, x), expected_counts(*this, from, library),
                        inverse_dispersion(from), {}, mu, inverse_dispersion(to), {}, generator)
        .to(mu.options());
  }
};

// Zero-inflated NB: with probability pi = sigmoid(zero_logits) a structural
// zero, otherwise an NB draw.
class ZeroInflatedNegativeBinomial final : public Likelihood {
 public:
  std::string name() const override { return "zinb"; }
  std::vector<std::string> parameters() const override { return {"rate", "log_theta", "zero_logits"}; }
  Tensor log_prob(const LikelihoodParams& p, const Tensor& x, const Tensor& library) const override {
    const Tensor mu = expected_counts(*this, p, library);
    const Tensor y = checked_observations(*this, p.rate, x);
    const Tensor nb = nb_log_prob(y, mu, inverse_dispersion(p));  // (B, G)
    // log pi and log(1 - pi) as softplus forms (log_sigmoid(l) = -softplus(-l)):
    // exact for logits of any size, where log(sigmoid()) underflows.
    const Tensor log_pi = at::log_sigmoid(p.zero_logits);
    const Tensor log_not_pi = at::log_sigmoid(-p.zero_logits);
    const Tensor not_zero = log_not_pi + nb;                      // (B, G) log((1 - pi) NB(x))
    const Tensor zero = at::logaddexp(log_pi, not_zero);          // (B, G) log(pi + (1 - pi) NB(0))
    return at::where(y < kEps, zero, not_zero);                   // (B, G)
  }
  Tensor mean(const LikelihoodParams& p, const Tensor& library) const override {
    const Tensor mu = expected_counts(*this, p, library);  // checks the params first
    return mu * at::sigmoid(-p.zero_logits);                // (B, G)
  }
  Tensor variance(const LikelihoodParams& p, const Tensor& library) const override {
    // Mixture of 0 and NB: E[X^2] = (1 - pi)(mu + mu^2 / theta + mu^2).
    const Tensor mu = expected_counts(*this, p, library);
    const Tensor pi = at::sigmoid(p.zero_logits), not_pi = at::sigmoid(-p.zero_logits);
    return not_pi * (mu + mu * mu / inverse_dispersion(p)) + pi * not_pi * mu * mu;  // (B, G)
  }
  Tensor sample(const LikelihoodParams& p, const Tensor& library, at::Generator& generator) const override {
    check_generator(*this, generator);
    const Tensor mu = expected_counts(*this, p, library);
    const at::ScalarType dtype = draw_dtype(mu);
    const Tensor mu_cpu = to_cpu(mu, dtype);
    const Tensor counts = draw_nb(mu_cpu, to_cpu(inverse_dispersion(p), dtype), generator);  // (B, G)
    const Tensor pi = to_cpu(at::sigmoid(p.zero_logits), dtype).expand_as(mu_cpu).contiguous();
    const Tensor structural_zero = at::bernoulli(pi, generator);                              // (B, G)
    return (counts * (1 - structural_zero)).to(mu.options());
  }
  Tensor carry(const LikelihoodParams& from, const LikelihoodParams& to, const Tensor& x, const Tensor& library,
               at::Generator& generator) const override {
    check_generator(*this, generator);
    const Tensor mu = expected_counts(*this, to, library);
    return carry_counts(checked_observations(*this, from.rate, x), expected_counts(*this, from, library),
                        inverse_dispersion(from), at::sigmoid(from.zero_logits), mu, inverse_dispersion(to),
                        at::sigmoid(to.zero_logits), generator)
        .to(mu.options());
  }
};

// N(rate, exp(log_scale)^2): for continuous (e.g. log-normalised) expression.
class Gaussian final : public Likelihood {
 public:
  std::string name() const override { return "gaussian"; }
  std::vector<std::string> parameters() const override { return {"rate", "log_scale"}; }
  Tensor log_prob(const LikelihoodParams& p, const Tensor& x, const Tensor& library) const override {
    const Tensor& centre = checked_rate(*this, p);
    const Tensor z = (checked_observations(*this, centre, x) - centre) * at::exp(-p.log_scale);  // (B, G)
    return -0.5 * z * z - p.log_scale - 0.5 * std::log(2 * M_PI);                              // (B, G)
  }
  Tensor mean(const LikelihoodParams& p, const Tensor& library) const override {
    return checked_rate(*this, p);
  }
  Tensor variance(const LikelihoodParams& p, const Tensor& library) const override {
    const Tensor& rate = checked_rate(*this, p);
    return at::exp(2 * p.log_scale).expand_as(rate).contiguous();  // (B, G)
  }
  Tensor sample(const LikelihoodParams& p, const Tensor& library, at::Generator& generator) const override {
    check_generator(*this, generator);
    const Tensor& rate = checked_rate(*this, p);
    const at::ScalarType dtype = draw_dtype(rate);
    const Tensor noise = at::normal(0.0, 1.0, rate.sizes(), generator,
                                    at::TensorOptions().dtype(dtype));  // (B, G) on the CPU
    return (to_cpu(rate, dtype) + to_cpu(p.log_scale, dtype).exp() * noise).to(rate.options());
  }
  Tensor carry(const LikelihoodParams& from, const LikelihoodParams& to, const Tensor& x, const Tensor& library,
               at::Generator& generator) const override {
    const Tensor& centre = checked_rate(*this, from);
    const Tensor score = (checked_observations(*this, centre, x) - centre) * at::exp(-from.log_scale);  // (B, G)
    return (checked_rate(*this, to) + score * at::exp(to.log_scale)).detach();                         // (B, G)
  }
};

template <class L>
std::unique_ptr<Likelihood> create() {
  return std::make_unique<L>();
}

// The table, not self-registering statics: those would be dropped with their
// object file when the core is linked as a static archive.
const std::map<std::string, std::unique_ptr<Likelihood> (*)()>& registry() {
  static const std::map<std::string, std::unique_ptr<Likelihood> (*)()> entries = {
      {"gaussian", &create<Gaussian>},
      {"nb", &create<NegativeBinomial>},
      {"poisson", &create<Poisson>},
      {"zinb", &create<ZeroInflatedNegativeBinomial>},
  };
  return entries;
}

const std::map<std::string, Tensor LikelihoodParams::*>& param_fields() {
  static const std::map<std::string, Tensor LikelihoodParams::*> fields = {
      {"rate", &LikelihoodParams::rate},
      {"log_theta", &LikelihoodParams::log_theta},
      {"zero_logits", &LikelihoodParams::zero_logits},
      {"log_scale", &LikelihoodParams::log_scale},
  };
  return fields;
}

}  // namespace

Tensor& LikelihoodParams::field(const std::string& name) {
  return this->*registry_entry(param_fields(), name, "likelihood parameter");
}

const Tensor& LikelihoodParams::field(const std::string& name) const {
  return this->*registry_entry(param_fields(), name, "likelihood parameter");
}

std::vector<std::string> LikelihoodParams::field_names() { return registry_names(param_fields()); }

std::vector<std::string> likelihood_names() { return registry_names(registry()); }

std::unique_ptr<Likelihood> make_likelihood(const std::string& name) {
  return registry_entry(registry(), name, "likelihood")();
}

}  // namespace exprflow
