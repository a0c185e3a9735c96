#include "data/coexpression_stand_ins.hpp"

#include <algorithm>
#include <numeric>

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
  for (const auto& [gene, level] : candidates) genes.push_back(gene);
  const Tensor similarity = coexpression_similarity(expression, target, genes).contiguous();  // (C,)
  const double* s = similarity.data_ptr<double>();
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  std::vector<StandIn> out;
  double total = 0;
  for (size_t r = 0; r < order.size() && static_cast<int64_t>(out.size()) < k && s[order[r]] > 0; ++r) {
    out.push_back({candidates[order[r]].second, s[order[r]]});
    total += s[order[r]];
  }
  if (out.empty()) {
    for (const auto& [gene, level] : candidates) out.push_back({level, 1.0});
    total = static_cast<double>(candidates.size());
  }
  for (StandIn& stand_in : out) stand_in.weight /= total;
  return out;
}

}  // namespace exprflow
