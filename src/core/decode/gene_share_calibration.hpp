// A gene-space model's mean share of each gene, corrected to the training
// cells' per combination of covariate levels. Torch-free.
//
// Why: a gene-space sample's values where real cells of the type have a
// zero, or a count now and then, are blurred towards their mean log value
// (decode/count_decoding.hpp), and expm1 of a mean log value is below the
// mean of expm1: the expected counts of rarely detected genes come out too
// small, and the sample's counts detect too few of them (state_mlp on the
// example data: 73.2% zeros against 71.4% for real cells). At the end of
// training the model draws a calibration sample for the training cells'
// combinations, and each gene's factor is the training cells' mean share
// of it over the sample's (share: the gene's part of the cell's expected
// counts); generated cells' expected counts are scaled by their
// combination's factors and renormalised to their library size before they
// are rounded.
//
// Measured before it was built, on saved samples of state_mlp (one fit per
// seed, seeds 1-3, ranked library sizes; factors from one half of the
// generated cells of each type applied to the other half; MMD / energy
// distance / kNN AUC / condition accuracy): example data 0.0058 / 0.243 /
// 0.525 / 0.818 against 0.0085 / 0.344 / 0.544 / 0.820 uncorrected, PBMC3k
// 0.0030 / 0.123 / 0.597 / 0.877 against 0.0068 / 0.270 / 0.621 / 0.867;
// pathway_tokens on PBMC3k (seed 1) 0.0067 / 0.260 / 0.701 / 0.878 against
// 0.0086 / 0.352 / 0.658 / 0.872 (its kNN AUC worse). As built
// (compare_latent.R DATASET DIR 1,2,3 state_mlp, package defaults):
// example data 0.0039 / 0.170 / 0.542 / 0.798 against 0.0079 / 0.328 /
// 0.569 / 0.796 before (independent NB 0.0081 / 0.307 / 0.640 / 0.878, NB
// copula 0.0078 / 0.304 / 0.611 / 0.815); PBMC3k 0.0033 / 0.135 / 0.606 /
// 0.886 against 0.0069 / 0.277 / 0.608 / 0.875 (independent NB 0.0098 /
// 0.365 / 0.734 / 0.901, NB copula 0.0087 / 0.329 / 0.650 / 0.837).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace exprflow {

class GeneShareCalibration {
 public:
  explicit GeneShareCalibration(int n_genes = 0) : n_genes_(n_genes) {}

  int n_genes() const { return n_genes_; }
  bool empty() const { return factors_.empty(); }
  void clear();

  // One cell's expected counts, or any values proportional to them (G,):
  // the training cells' go to the targets (add_target), the calibration
  // sample's to the model's means (add_model), under the cell's codes.
  void add_target(const std::vector<int>& codes, const double* expected);
  void add_model(const std::vector<int>& codes, const double* expected);
  // The targets of every combination `from` has targets for, replacing
  // these (training on new cells: their combinations get their targets,
  // the others keep the earlier ones).
  void take_targets(const GeneShareCalibration& from);
  // Factors for every combination with targets: the target mean share of
  // each gene over the model's (1 where the model had no share of the
  // gene; a combination the model had no cells of keeps its factors, or
  // gets 1s). The model's means are then cleared; the targets stay for the
  // next calibration after further training.
  void finish();
  // Scales one cell's expected counts (G,) by the factors of its
  // combination, keeping their total; cells of a combination without
  // factors keep theirs.
  void apply(const std::vector<int>& codes, double* expected) const;

  // For the model file: per combination, the training cells' summed shares
  // and number, and the factors.
  struct Row {
    std::vector<int> codes;
    std::vector<double> target_sum;  // (G,)
    long target_cells = 0;
    std::vector<double> factors;  // (G,); empty before the first finish()
  };
  std::vector<Row> rows() const;
  void restore(const std::vector<Row>& rows);

 private:
  struct MeanShares {
    std::vector<double> sum;  // (G,) summed shares
    long cells = 0;
  };
  void add(std::map<std::vector<int>, MeanShares>& to, const std::vector<int>& codes, const double* expected) const;

  int n_genes_;
  std::map<std::vector<int>, MeanShares> targets_, model_;
  std::map<std::vector<int>, std::vector<double>> factors_;
};

// The sample option gene_calibration: "mean" (the factors; an error for a
// model without them), "none", or "default": "mean" where the model has
// factors (gene-space models trained since they were introduced), else
// "none".
std::string resolve_gene_calibration(const std::string& method, bool has_factors);

}  // namespace exprflow
