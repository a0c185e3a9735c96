#include "data/perturbation_shift.hpp"

#include <stdexcept>

namespace exprflow {

namespace {

void add(std::vector<float>& sum, const std::vector<float>& v, float sign) {
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += sign * v[i];
}

// D(x): the shift from x' (control) to x, for perturbation covariate `p`.
std::vector<float> effect(const CovariateCentroids& centroids, const PerturbationLevels& p,
                          const std::vector<int>& x) {
  std::vector<int> base = x;
  base[p.covariate] = p.control;
  const int code = x[p.covariate];
  if (code < 0) throw std::invalid_argument("a latent shift needs a known level of '" + p.names[p.control] + "''s covariate");
  if (centroids.has_level(p.covariate, code)) return centroids.shift(base, x);
  std::vector<float> sum(centroids.dims(), 0.0f);
  const auto add_shift_to = [&](int level, float weight) {
    std::vector<int> with_level = base;
    with_level[p.covariate] = level;
    add(sum, centroids.shift(base, with_level), weight);
  };
  for (size_t j = 0; j < p.singles.at(code).size(); ++j) {
    const int single = p.singles[code][j];
    if (single >= 0 && centroids.has_level(p.covariate, single)) {
      add_shift_to(single, 1.0f);
      continue;
    }
    const auto stand_ins = p.stand_ins.find(p.members[code][j]);
    if (stand_ins == p.stand_ins.end() || stand_ins->second.empty()) {
      throw std::invalid_argument("'" + p.names[code] + "' has no training cells and neither has its member '" +
                                  p.members[code][j] + "' alone: an additive latent shift needs each member's own " +
                                  "(or stand-ins: trained targets alike to it, by co-expression when it is one of " +
                                  "the model's genes, or by the gene sets or network given as stand_ins)");
    }
    for (const StandIn& s : stand_ins->second) add_shift_to(s.level, static_cast<float>(s.weight));
  }
  return sum;
}

}  // namespace

std::vector<float> perturbation_shift(const CovariateCentroids& centroids,
                                      const std::vector<PerturbationLevels>& from_levels,
                                      const std::vector<PerturbationLevels>& to_levels, const std::vector<int>& from,
                                      const std::vector<int>& to) {
  // Only a covariate with an end no training cell has needs the additive model.
  std::vector<int> from_base = from, to_base = to;
  std::vector<float> sum(centroids.dims(), 0.0f);
  for (size_t k = 0; k < to_levels.size(); ++k) {
    const PerturbationLevels& f = from_levels.at(k);
    const PerturbationLevels& t = to_levels[k];
    const int p = t.covariate;
    const bool seen = from[p] >= 0 && to[p] >= 0 && centroids.has_level(p, from[p]) && centroids.has_level(p, to[p]);
    if (seen) continue;
    add(sum, effect(centroids, t, to), 1.0f);
    add(sum, effect(centroids, f, from), -1.0f);
    from_base[p] = f.control;
    to_base[p] = t.control;
  }
  add(sum, centroids.shift(from_base, to_base), 1.0f);
  return sum;
}

}  // namespace exprflow
