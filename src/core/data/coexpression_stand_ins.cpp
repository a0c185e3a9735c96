#include "data/coexpression_stand_ins.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace exprflow {

namespace {

// (rows, G) the correlation of each gene of `rows` with every gene.
Tensor correlation_profiles(const Tensor& expression, const std::vector<int64_t>& rows) {
  const Tensor x = expression.to(at::kCPU, at::kDouble);  // (N, G)
  const Tensor centred = x - x.mean(0, /*keepdim=*/true);
  const Tensor norm = centred.pow(2).sum(0).sqrt();                        // (G,)
  const Tensor unit = centred / norm.clamp_min(1e-12).unsqueeze(0);        // (N, G); constant genes stay 0
  const Tensor picked = unit.index_select(1, at::tensor(rows, at::TensorOptions().dtype(at::kLong)));  // (N, R)
  return at::matmul(picked.t(), unit);                                     // (R, G)
}

// The `k` candidates (levels) with the largest positive similarity, weighted
// by it; none positive: all of them equally. Weights sum to 1.
std::vector<StandIn> strongest_stand_ins(const std::vector<double>& similarity, const std::vector<int>& levels,
                                         int64_t k) {
  std::vector<size_t> order(levels.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return similarity[a] > similarity[b]; });
  std::vector<StandIn> out;
  double total = 0;
  for (size_t r = 0; r < order.size() && static_cast<int64_t>(out.size()) < k && similarity[order[r]] > 0; ++r) {
    out.push_back({levels[order[r]], similarity[order[r]]});
    total += similarity[order[r]];
  }
  if (out.empty()) {
    for (int level : levels) out.push_back({level, 1.0});
    total = static_cast<double>(levels.size());
  }
  for (StandIn& stand_in : out) stand_in.weight /= total;
  return out;
}

}  // namespace

Tensor coexpression_similarity(const Tensor& expression, int64_t target, const std::vector<int64_t>& genes) {
  std::vector<int64_t> rows{target};
  rows.insert(rows.end(), genes.begin(), genes.end());
  Tensor profiles = correlation_profiles(expression, rows);               // (1 + C, G)
  profiles = profiles - profiles.mean(1, /*keepdim=*/true);
  profiles = profiles / profiles.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12);
  return at::matmul(profiles.slice(0, 1), profiles[0]);                   // (C,)
}

std::vector<StandIn> coexpression_stand_ins(const Tensor& expression, int64_t target,
                                            const std::vector<std::pair<int64_t, int>>& candidates, int64_t k) {
  if (candidates.empty()) return {};
  std::vector<int64_t> genes;
  std::vector<int> levels;
  for (const auto& [gene, level] : candidates) {
    genes.push_back(gene);
    levels.push_back(level);
  }
  const Tensor similarity = coexpression_similarity(expression, target, genes).contiguous();  // (C,)
  const double* s = similarity.data_ptr<double>();
  return strongest_stand_ins(std::vector<double>(s, s + similarity.numel()), levels, k);
}

GeneTerms gene_terms_of(const std::vector<std::string>& genes, const std::vector<std::string>& terms) {
  if (genes.size() != terms.size()) {
    throw std::invalid_argument("stand_in_genes and stand_in_terms must pair up, got " +
                                std::to_string(genes.size()) + " genes and " + std::to_string(terms.size()) +
                                " terms");
  }
  GeneTerms out;
  for (size_t i = 0; i < genes.size(); ++i) out[genes[i]].insert(terms[i]);
  return out;
}

std::vector<StandIn> shared_term_stand_ins(const GeneTerms& terms, const std::string& target,
                                           const std::vector<std::pair<std::string, int>>& candidates, int64_t k) {
  if (candidates.empty()) return {};
  static const std::set<std::string> kNone;
  const auto terms_of = [&](const std::string& gene) -> const std::set<std::string>& {
    const auto it = terms.find(gene);
    return it == terms.end() ? kNone : it->second;
  };
  const std::set<std::string>& mine = terms_of(target);
  std::vector<double> similarity;
  std::vector<int> levels;
  for (const auto& [gene, level] : candidates) {
    const std::set<std::string>& theirs = terms_of(gene);
    size_t shared = 0;
    for (const std::string& term : theirs) shared += mine.count(term);
    const size_t either = mine.size() + theirs.size() - shared;
    similarity.push_back(either ? static_cast<double>(shared) / static_cast<double>(either) : 0.0);
    levels.push_back(level);
  }
  return strongest_stand_ins(similarity, levels, k);
}

double validated_stand_in_weight(const std::vector<std::vector<float>>& shifts,
                                 const std::vector<std::vector<StandIn>>& left_out_stand_ins) {
  const size_t C = shifts.size();
  if (left_out_stand_ins.size() != C) throw std::invalid_argument("one list of stand-ins per candidate is needed");
  if (C < 3) return 1.0;
  const size_t d = shifts.front().size();
  std::vector<double> total(d, 0.0);
  for (const auto& a : shifts) {
    if (a.size() != d) throw std::invalid_argument("every candidate's shift needs the same length");
    for (size_t i = 0; i < d; ++i) total[i] += a[i];
  }
  double fit = 0, scale = 0;
  for (size_t j = 0; j < C; ++j) {
    std::vector<double> s(d, 0.0);
    for (const StandIn& in : left_out_stand_ins[j]) {
      if (in.level < 0 || static_cast<size_t>(in.level) >= C || static_cast<size_t>(in.level) == j) {
        throw std::invalid_argument("a left-out target's stand-ins must be other candidates");
      }
      for (size_t i = 0; i < d; ++i) s[i] += in.weight * shifts[in.level][i];
    }
    for (size_t i = 0; i < d; ++i) {
      const double m = (total[i] - shifts[j][i]) / static_cast<double>(C - 1);  // the others' average
      fit += (shifts[j][i] - m) * (s[i] - m);
      scale += (s[i] - m) * (s[i] - m);
    }
  }
  if (!(scale > 1e-12)) return 1.0;
  return std::clamp(fit / scale, 0.0, 1.0);
}

std::vector<StandIn> blend_with_average(const std::vector<StandIn>& stand_ins, const std::vector<int>& candidate_levels,
                                        double weight) {
  if (weight < 0 || weight > 1) throw std::invalid_argument("the stand-ins' weight must be in [0, 1]");
  std::vector<StandIn> out;
  for (const StandIn& in : stand_ins) {
    if (weight > 0) out.push_back({in.level, weight * in.weight});
  }
  if (weight < 1) {
    for (int level : candidate_levels) {
      out.push_back({level, (1 - weight) / static_cast<double>(candidate_levels.size())});
    }
  }
  return out;
}

}  // namespace exprflow
