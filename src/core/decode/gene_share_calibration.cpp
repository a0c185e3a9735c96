#include "decode/gene_share_calibration.hpp"

#include <stdexcept>
#include <string>

namespace exprflow {

void GeneShareCalibration::clear() {
  targets_.clear();
  model_.clear();
  factors_.clear();
}

void GeneShareCalibration::add(std::map<std::vector<int>, MeanShares>& to, const std::vector<int>& codes,
                               const double* expected) const {
  double total = 0;
  for (int g = 0; g < n_genes_; ++g) total += expected[g];
  if (!(total > 0)) return;  // a cell without counts has no shares
  MeanShares& m = to[codes];
  if (m.sum.empty()) m.sum.assign(n_genes_, 0.0);
  for (int g = 0; g < n_genes_; ++g) m.sum[g] += expected[g] / total;
  ++m.cells;
}

void GeneShareCalibration::add_target(const std::vector<int>& codes, const double* expected) {
  add(targets_, codes, expected);
}

void GeneShareCalibration::add_model(const std::vector<int>& codes, const double* expected) {
  add(model_, codes, expected);
}

void GeneShareCalibration::take_targets(const GeneShareCalibration& from) {
  if (from.n_genes_ != n_genes_) throw std::invalid_argument("gene share calibrations of different genes");
  for (const auto& [codes, target] : from.targets_) targets_[codes] = target;
}

void GeneShareCalibration::finish() {
  for (const auto& [codes, target] : targets_) {
    std::vector<double>& f = factors_[codes];  // kept where the sample had no cells of the combination
    const auto it = model_.find(codes);
    if (it == model_.end()) {
      if (f.empty()) f.assign(n_genes_, 1.0);
      continue;
    }
    f.assign(n_genes_, 1.0);
    const MeanShares& model = it->second;
    for (int g = 0; g < n_genes_; ++g) {
      const double have = model.sum[g] / model.cells, want = target.sum[g] / target.cells;
      if (have > 0) f[g] = want / have;
    }
  }
  model_.clear();
}

void GeneShareCalibration::apply(const std::vector<int>& codes, double* expected) const {
  const auto it = factors_.find(codes);
  if (it == factors_.end()) return;
  const std::vector<double>& f = it->second;
  double before = 0, after = 0;
  for (int g = 0; g < n_genes_; ++g) {
    before += expected[g];
    after += (expected[g] *= f[g]);
  }
  if (!(after > 0)) return;
  for (int g = 0; g < n_genes_; ++g) expected[g] *= before / after;
}

std::vector<GeneShareCalibration::Row> GeneShareCalibration::rows() const {
  std::vector<Row> out;
  for (const auto& [codes, target] : targets_) {
    Row r{codes, target.sum, target.cells, {}};
    const auto it = factors_.find(codes);
    if (it != factors_.end()) r.factors = it->second;
    out.push_back(std::move(r));
  }
  return out;
}

void GeneShareCalibration::restore(const std::vector<Row>& rows) {
  clear();
  for (const Row& r : rows) {
    if (static_cast<int>(r.target_sum.size()) != n_genes_ ||
        (!r.factors.empty() && static_cast<int>(r.factors.size()) != n_genes_)) {
      throw std::invalid_argument("the gene share calibration does not hold " + std::to_string(n_genes_) +
                                  " genes per combination");
    }
    if (r.target_cells < 1) throw std::invalid_argument("the gene share calibration has a combination without cells");
    targets_[r.codes] = MeanShares{r.target_sum, r.target_cells};
    if (!r.factors.empty()) factors_[r.codes] = r.factors;
  }
}

std::string resolve_gene_calibration(const std::string& method, bool has_factors) {
  if (method == "default") return has_factors ? "mean" : "none";
  if (method == "none") return method;
  if (method == "mean") {
    if (!has_factors) {
      throw std::invalid_argument("gene_calibration 'mean' needs a gene-space model trained with its calibration; "
                                  "this model has none: use 'none'");
    }
    return method;
  }
  throw std::invalid_argument("gene_calibration must be 'default', 'mean' or 'none', not '" + method + "'");
}

}  // namespace exprflow
