// The gene share calibration of gene-space models
// (decode/gene_share_calibration.hpp): factors per combination of levels
// that bring a calibration sample's mean gene shares to the training
// cells', applied to the expected counts of generated cells.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/expression_source.hpp"
#include "decode/gene_share_calibration.hpp"
#include "exprflow/api.hpp"

using namespace exprflow;

TEST(GeneShareCalibration, FactorsBringTheModelsSharesToTheTargets) {
  GeneShareCalibration calibration(3);
  // Targets of combination {0}: mean shares (0.5, 0.3, 0.2) from two cells.
  const std::vector<double> a = {60, 20, 20}, b = {40, 40, 20};
  calibration.add_target({0}, a.data());
  calibration.add_target({0}, b.data());
  // The model's cells of {0} all have shares (0.6, 0.3, 0.1), at any total.
  const std::vector<double> model = {6, 3, 1}, model_deep = {60, 30, 10};
  calibration.add_model({0}, model.data());
  calibration.add_model({0}, model_deep.data());
  calibration.finish();

  std::vector<double> expected = {600, 300, 100};  // one generated cell of 1,000 counts
  calibration.apply({0}, expected.data());
  EXPECT_NEAR(expected[0], 500, 1e-9);
  EXPECT_NEAR(expected[1], 300, 1e-9);
  EXPECT_NEAR(expected[2], 200, 1e-9);

  // A combination without factors keeps its expected counts.
  std::vector<double> other = {1, 2, 3};
  calibration.apply({1}, other.data());
  EXPECT_EQ(other, (std::vector<double>{1, 2, 3}));
}

TEST(GeneShareCalibration, ACombinationTheSampleMissedKeepsItsFactors) {
  GeneShareCalibration calibration(2);
  const std::vector<double> even = {1, 1}, skewed = {3, 1};
  calibration.add_target({0}, even.data());
  calibration.add_target({1}, even.data());
  calibration.add_model({0}, skewed.data());
  calibration.add_model({1}, skewed.data());
  calibration.finish();
  // A second calibration (after fine-tuning) that saw only {1}.
  calibration.add_model({1}, even.data());
  calibration.finish();
  std::vector<double> zero = {3, 1}, one = {3, 1};
  calibration.apply({0}, zero.data());
  calibration.apply({1}, one.data());
  EXPECT_NEAR(zero[0], 2, 1e-12);  // (3, 1) scaled by (2/3, 2) and renormalised to 4
  EXPECT_NEAR(one[0], 3, 1e-12);   // factors 1: the second sample matched the targets
}

TEST(GeneShareCalibration, RowsRestoreTheSameCalibration) {
  GeneShareCalibration calibration(2);
  const std::vector<double> target = {1, 3}, model = {1, 1};
  calibration.add_target({0, -1}, target.data());
  calibration.add_model({0, -1}, model.data());
  calibration.finish();
  GeneShareCalibration restored(2);
  restored.restore(calibration.rows());
  ASSERT_EQ(restored.rows().size(), 1u);
  EXPECT_EQ(restored.rows()[0].codes, (std::vector<int>{0, -1}));
  EXPECT_EQ(restored.rows()[0].factors, calibration.rows()[0].factors);
  EXPECT_EQ(restored.rows()[0].target_sum, calibration.rows()[0].target_sum);
  GeneShareCalibration wrong(3);
  EXPECT_THROW(wrong.restore(calibration.rows()), std::invalid_argument);
}

TEST(GeneShareCalibration, ResolvesTheSampleOption) {
  EXPECT_EQ(resolve_gene_calibration("default", true), "mean");
  EXPECT_EQ(resolve_gene_calibration("default", false), "none");
  EXPECT_EQ(resolve_gene_calibration("none", true), "none");
  EXPECT_EQ(resolve_gene_calibration("mean", true), "mean");
  EXPECT_THROW(resolve_gene_calibration("mean", false), std::invalid_argument);
  EXPECT_THROW(resolve_gene_calibration("quantile", true), std::invalid_argument);
}

namespace {

constexpr int kGenes = 20, kCells = 400, kRare = 12;

// Two cell types of ~1,000 counts. The first kRare genes are rarely
// detected (0.3 counts per cell in type 0, 0.1 in type 1), the rest carry
// the counts in proportions that differ by type.
struct TwoTypes {
  std::vector<double> counts;  // genes x cells, column-major
  std::vector<int> type;
  std::unique_ptr<DenseExpressionSource> source;
};

const TwoTypes& two_types() {
  static const TwoTypes d = [] {
    TwoTypes d;
    std::mt19937_64 rng(5);
    d.counts.resize(static_cast<size_t>(kGenes) * kCells);
    for (int c = 0; c < kCells; ++c) {
      const int t = c % 2;
      d.type.push_back(t);
      for (int g = 0; g < kGenes; ++g) {
        const double mean = g < kRare ? (t == 0 ? 0.3 : 0.1) : (t == 0 ? 60.0 + 20 * (g - kRare) : 200.0 - 20 * (g - kRare));
        d.counts[static_cast<size_t>(c) * kGenes + g] = std::poisson_distribution<int>(mean)(rng);
      }
    }
    std::vector<std::string> genes;
    for (int g = 0; g < kGenes; ++g) genes.push_back("g" + std::to_string(g));
    d.source = std::make_unique<DenseExpressionSource>(genes, kCells, d.counts.data());
    return d;
  }();
  return d;
}

// Mean count of each rare gene over the cells of type t: (kRare,).
std::vector<double> rare_means(const double* counts, int n_cells, const std::vector<int>& type, int t) {
  std::vector<double> m(kRare, 0.0);
  int n = 0;
  for (int c = 0; c < n_cells; ++c) {
    if (type[c] != t) continue;
    ++n;
    for (int g = 0; g < kRare; ++g) m[g] += counts[static_cast<size_t>(c) * kGenes + g];
  }
  for (double& v : m) v /= n;
  return m;
}

}  // namespace

TEST(GeneShareCalibration, GeneratedRareGenesGetTheTrainingCellsMeanCounts) {
  const TwoTypes& d = two_types();
  Options spec;
  spec.set("architecture", "state_mlp").set("hidden", 64).set("n_layers", 2).set("seed", 3);
  auto model = GenerativeModel::create(spec, d.source->genes(), {"type0", "type1"});
  Options train;
  train.set("epochs", 30).set("batch_size", 64).set("learning_rate", 3e-3).set("validation_fraction", 0.1)
      .set("patience", 0).set("seed", 2);
  model->train(*d.source, d.type, train, {});

  std::vector<int> cells;
  for (int i = 0; i < 600; ++i) cells.push_back(i % 2);
  Options o;
  o.set("seed", 4).set("steps", 20).set("library_size", "empirical");
  const GeneratedCells calibrated = model->generate(cells, o);
  o.set("gene_calibration", "none");
  const GeneratedCells plain = model->generate(cells, o);
  EXPECT_EQ(calibrated.gene_calibration, "mean");  // the default of a trained gene-space model
  EXPECT_EQ(plain.gene_calibration, "none");
  EXPECT_EQ(calibrated.logcounts, plain.logcounts);  // the same sample, other counts

  // The rare genes' counts per cell, summed over them, against the
  // training cells' (all cells here; the targets are the training split's,
  // 90% of them). Sums: each gene's own mean is noisy at 300 cells.
  std::vector<double> counts_c(calibrated.counts.begin(), calibrated.counts.end());
  std::vector<double> counts_p(plain.counts.begin(), plain.counts.end());
  for (int t = 0; t < 2; ++t) {
    double real = 0, with = 0, without = 0;
    for (double m : rare_means(d.counts.data(), kCells, d.type, t)) real += m;
    for (double m : rare_means(counts_c.data(), 600, cells, t)) with += m;
    for (double m : rare_means(counts_p.data(), 600, cells, t)) without += m;
    EXPECT_LT(std::abs(with - real), std::abs(without - real))
        << "type " << t << ": real " << real << ", calibrated " << with << ", plain " << without;
    EXPECT_LT(std::abs(with - real) / real, 0.15)  // ~5% sampling noise in each sum
        << "type " << t << ": real " << real << ", calibrated " << with << ", plain " << without;
  }

  // The factors travel with the model file.
  auto loaded = GenerativeModel::load_bytes(model->to_bytes());
  o.set("gene_calibration", "default");
  EXPECT_EQ(loaded->generate(cells, o).counts, calibrated.counts);
}

TEST(GeneShareCalibration, LatentModelsRefuseIt) {
  const TwoTypes& d = two_types();
  Options spec;
  spec.set("architecture", "vae").set("latent_dim", 4).set("vae_hidden", 16).set("seed", 3);
  auto model = GenerativeModel::create(spec, d.source->genes(), {});
  Options train;
  train.set("epochs", 1).set("batch_size", 64).set("validation_fraction", 0.1).set("seed", 2);
  model->train(*d.source, {}, train, {});
  const std::vector<int> cells(4, -1);
  Options o;
  o.set("seed", 4);
  EXPECT_EQ(model->generate(cells, o).gene_calibration, "none");
  o.set("gene_calibration", "none");
  EXPECT_NO_THROW(model->generate(cells, o));
  o.set("gene_calibration", "mean");
  EXPECT_THROW(model->generate(cells, o), std::invalid_argument);
}
