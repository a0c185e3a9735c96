// Data stage: expression sources (CSC and dense), train/validation split and
// per-gene scaling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/cell_batch.hpp"
#include "data/expression_source.hpp"
#include "data/gene_scaling.hpp"
#include "data/library_sizes.hpp"
#include "data/split.hpp"

using namespace exprflow;

namespace {

std::vector<std::string> gene_names(int G) {
  std::vector<std::string> genes;
  for (int g = 0; g < G; ++g) genes.push_back("gene" + std::to_string(g));
  return genes;
}

// Column-major genes x cells counts with plenty of zeros, one all-zero cell
// (the last) and one all-zero gene (gene 1).
std::vector<double> example_counts(int G, int C, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::poisson_distribution<int> pois(3.0);
  std::bernoulli_distribution zero(0.5);
  std::vector<double> x(static_cast<size_t>(G) * C, 0.0);
  for (int c = 0; c < C - 1; ++c) {
    for (int g = 0; g < G; ++g) {
      if (g == 1 || zero(rng)) continue;
      x[static_cast<size_t>(c) * G + g] = pois(rng) + (g == 2 ? 0.5 : 0.0);  // one non-integer gene
    }
  }
  return x;
}

struct Csc {
  std::vector<int> col_ptr, row_idx;
  std::vector<double> values;
};

Csc to_csc(const std::vector<double>& dense, int G, int C) {
  Csc m;
  m.col_ptr.push_back(0);
  for (int c = 0; c < C; ++c) {
    for (int g = 0; g < G; ++g) {
      const double v = dense[static_cast<size_t>(c) * G + g];
      if (v != 0) {
        m.row_idx.push_back(g);
        m.values.push_back(v);
      }
    }
    m.col_ptr.push_back(static_cast<int>(m.row_idx.size()));
  }
  return m;
}

template <typename F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than std::invalid_argument: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(ExpressionSource, CscAndDenseGiveBitIdenticalMinibatches) {
  const int G = 30, C = 25;
  const std::vector<double> dense = example_counts(G, C, 7);
  const Csc csc = to_csc(dense, G, C);
  ASSERT_LT(csc.values.size(), dense.size()) << "the example should be sparse";
  DenseExpressionSource d(gene_names(G), C, dense.data());
  CscExpressionSource s(gene_names(G), C, csc.col_ptr.data(), csc.row_idx.data(), csc.values.data());
  EXPECT_EQ(d.n_genes(), G);
  EXPECT_EQ(s.n_genes(), G);
  EXPECT_EQ(d.n_cells(), C);
  EXPECT_EQ(s.n_cells(), C);
  EXPECT_EQ(d.genes(), s.genes());

  // Unordered cells with a repeat and the all-zero cell.
  const std::vector<int> cells = {3, 0, C - 1, 17, 3, 9};
  const size_t n = cells.size() * G;
  std::vector<float> a(n, -1.0f), b(n, -2.0f);
  d.fill_counts(cells, a.data());
  s.fill_counts(cells, b.data());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float))) << "counts differ between CSC and dense";
  for (size_t i = 0; i < cells.size(); ++i) {
    for (int g = 0; g < G; ++g) {
      ASSERT_EQ(a[i * G + g], static_cast<float>(dense[static_cast<size_t>(cells[i]) * G + g]))
          << "cell " << cells[i] << " gene " << g;
    }
  }

  std::fill(a.begin(), a.end(), -1.0f);
  std::fill(b.begin(), b.end(), -2.0f);
  d.fill_log_normalised(cells, a.data());
  s.fill_log_normalised(cells, b.data());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float)))
      << "log-normalised values differ between CSC and dense";

  for (size_t i = 0; i < cells.size(); ++i) {
    double lib = 0;
    for (int g = 0; g < G; ++g) lib += dense[static_cast<size_t>(cells[i]) * G + g];
    for (int g = 0; g < G; ++g) {
      const double x = dense[static_cast<size_t>(cells[i]) * G + g];
      const double expected = lib > 0 ? std::log1p(x / lib * 1e4) : 0.0;
      ASSERT_NEAR(a[i * G + g], expected, 1e-5 * std::max(1.0, expected))
          << "log1p(x / lib * 1e4) wrong at cell " << cells[i] << " gene " << g;
    }
  }
  // The all-zero cell is an all-zero row, not NaN.
  for (int g = 0; g < G; ++g) EXPECT_EQ(a[2 * G + g], 0.0f);
}

TEST(ExpressionSource, LibrarySizes) {
  const int G = 20, C = 12;
  const std::vector<double> dense = example_counts(G, C, 11);
  const Csc csc = to_csc(dense, G, C);
  DenseExpressionSource d(gene_names(G), C, dense.data());
  CscExpressionSource s(gene_names(G), C, csc.col_ptr.data(), csc.row_idx.data(), csc.values.data());
  ASSERT_EQ(d.library_sizes().size(), static_cast<size_t>(C));
  ASSERT_EQ(s.library_sizes().size(), static_cast<size_t>(C));
  for (int c = 0; c < C; ++c) {
    double lib = 0;
    for (int g = 0; g < G; ++g) lib += dense[static_cast<size_t>(c) * G + g];
    EXPECT_DOUBLE_EQ(d.library_sizes()[c], lib) << "dense library size of cell " << c;
    EXPECT_DOUBLE_EQ(s.library_sizes()[c], lib) << "CSC library size of cell " << c;
  }
  EXPECT_EQ(d.library_sizes()[C - 1], 0.0);
}

TEST(ExpressionSource, LogNormaliseRow) {
  float row[4] = {0.0f, 1.0f, 4.0f, 5.0f};
  log_normalise_row(row, 4, 10.0);
  EXPECT_FLOAT_EQ(row[0], 0.0f);
  EXPECT_NEAR(row[1], std::log1p(1000.0), 1e-5);
  EXPECT_NEAR(row[2], std::log1p(4000.0), 1e-5);
  float zero_lib[2] = {3.0f, 1.0f};
  log_normalise_row(zero_lib, 2, 0.0);
  EXPECT_EQ(zero_lib[0], 0.0f);
  EXPECT_EQ(zero_lib[1], 0.0f);
}

TEST(ExpressionSource, RejectsBadCounts) {
  const int G = 3, C = 2;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {-1.0, nan, inf, -inf}) {
    std::vector<double> dense = {1, 2, 3, 4, 5, 6};
    dense[4] = bad;  // gene 2, cell 2 (1-based)
    const std::string m = invalid_argument_message(
        [&] { DenseExpressionSource(gene_names(G), C, dense.data()); });
    EXPECT_TRUE(contains(m, "gene 2") && contains(m, "cell 2")) << "dense, value " << bad << ": " << m;
    EXPECT_TRUE(contains(m, bad < 0 && std::isfinite(bad) ? "non-negative" : "finite")) << m;

    const Csc csc = to_csc(dense, G, C);
    const std::string m2 = invalid_argument_message([&] {
      CscExpressionSource(gene_names(G), C, csc.col_ptr.data(), csc.row_idx.data(), csc.values.data());
    });
    EXPECT_TRUE(contains(m2, "gene 2") && contains(m2, "cell 2")) << "CSC, value " << bad << ": " << m2;
  }
}

TEST(ExpressionSource, RejectsBadGeneNamesAndShapes) {
  const std::vector<double> dense = {1, 2, 3, 4, 5, 6};
  const std::string dup = invalid_argument_message(
      [&] { DenseExpressionSource({"a", "b", "a"}, 2, dense.data()); });
  EXPECT_TRUE(contains(dup, "'a'") && contains(dup, "duplicated")) << dup;
  const std::string empty = invalid_argument_message(
      [&] { DenseExpressionSource({"a", "", "c"}, 2, dense.data()); });
  EXPECT_TRUE(contains(empty, "empty")) << empty;

  const std::string no_cells = invalid_argument_message(
      [&] { DenseExpressionSource({"a", "b", "c"}, 0, dense.data()); });
  EXPECT_TRUE(contains(no_cells, "zero cells")) << no_cells;
  const int col_ptr0[1] = {0};
  const std::string no_cells_csc = invalid_argument_message(
      [&] { CscExpressionSource({"a", "b", "c"}, 0, col_ptr0, nullptr, nullptr); });
  EXPECT_TRUE(contains(no_cells_csc, "zero cells")) << no_cells_csc;

  const std::string no_genes = invalid_argument_message(
      [&] { DenseExpressionSource({}, 2, dense.data()); });
  EXPECT_TRUE(contains(no_genes, "no genes")) << no_genes;
  const int col_ptr2[3] = {0, 0, 0};
  const std::string no_genes_csc = invalid_argument_message(
      [&] { CscExpressionSource({}, 2, col_ptr2, nullptr, nullptr); });
  EXPECT_TRUE(contains(no_genes_csc, "no genes")) << no_genes_csc;

  // A row index outside the genes.
  const int col_ptr[3] = {0, 1, 1};
  const int row_idx[1] = {5};
  const double values[1] = {1.0};
  EXPECT_THROW(CscExpressionSource({"a", "b", "c"}, 2, col_ptr, row_idx, values), std::invalid_argument);
}

TEST(ExpressionSource, OutOfRangeCellIndex) {
  const int G = 20, C = 5;
  const std::vector<double> dense = example_counts(G, C, 3);
  const Csc csc = to_csc(dense, G, C);
  DenseExpressionSource d(gene_names(G), C, dense.data());
  CscExpressionSource s(gene_names(G), C, csc.col_ptr.data(), csc.row_idx.data(), csc.values.data());
  std::vector<float> out(2 * G);
  EXPECT_THROW(d.fill_counts({0, C}, out.data()), std::out_of_range);
  EXPECT_THROW(s.fill_counts({0, C}, out.data()), std::out_of_range);
  EXPECT_THROW(d.fill_log_normalised({-1}, out.data()), std::out_of_range);
  EXPECT_THROW(s.fill_log_normalised({-1}, out.data()), std::out_of_range);
  EXPECT_NO_THROW(d.fill_counts({C - 1, 0}, out.data()));
}

// ------------------------------------------------------------------ split ---
TEST(SplitCells, DeterministicDisjointAndCovering) {
  const int n = 200;
  std::vector<int> strata(n);
  for (int c = 0; c < n; ++c) strata[c] = c % 3;
  const CellSplit a = split_cells(n, strata, 0.2, 42);
  const CellSplit b = split_cells(n, strata, 0.2, 42);
  EXPECT_EQ(a.train, b.train) << "same seed, different split";
  EXPECT_EQ(a.validation, b.validation);
  const CellSplit other = split_cells(n, strata, 0.2, 43);
  EXPECT_NE(a.validation, other.validation) << "the seed has no effect";

  EXPECT_TRUE(std::is_sorted(a.train.begin(), a.train.end()));
  EXPECT_TRUE(std::is_sorted(a.validation.begin(), a.validation.end()));
  std::set<int> all(a.train.begin(), a.train.end());
  for (int c : a.validation) EXPECT_TRUE(all.insert(c).second) << "cell " << c << " in both parts";
  EXPECT_EQ(all.size(), static_cast<size_t>(n)) << "cells missing or repeated";
  EXPECT_EQ(*all.begin(), 0);
  EXPECT_EQ(*all.rbegin(), n - 1);
  // round(0.2 * 67) + round(0.2 * 67) + round(0.2 * 66) = 13 + 13 + 13.
  EXPECT_EQ(a.validation.size(), 39u);

  // No strata: one group.
  const CellSplit plain = split_cells(n, {}, 0.25, 1);
  EXPECT_EQ(plain.validation.size(), 50u);
  EXPECT_EQ(plain.train.size(), 150u);
}

TEST(SplitCells, FewerThanTwoTrainingCellsAreAClearError) {
  // Two cells: one goes to validation, one is left to train on.
  const CellSplit two = split_cells(2, {}, 0.1, 1);
  ASSERT_EQ(two.train.size(), 1u);
  try {
    check_training_cells(two);
    FAIL() << "one training cell was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("2 cell(s), 1 of them held out for validation"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(check_training_cells(split_cells(1, {}, 0.0, 1)), std::invalid_argument);
  EXPECT_NO_THROW(check_training_cells(split_cells(3, {}, 0.1, 1)));
}

TEST(SplitCells, Stratified) {
  // Strata of sizes 1, 2, 3, 50 and 144 (labels need not be contiguous).
  std::vector<int> strata;
  const std::vector<std::pair<int, int>> groups = {{7, 1}, {-2, 2}, {100, 3}, {5, 50}, {0, 144}};
  for (const auto& g : groups) strata.insert(strata.end(), g.second, g.first);
  std::shuffle(strata.begin(), strata.end(), std::mt19937_64(5));
  const int n = static_cast<int>(strata.size());
  for (uint64_t seed : {1u, 2u, 3u}) {
    const CellSplit s = split_cells(n, strata, 0.1, seed);
    for (const auto& g : groups) {
      int val = 0, train = 0;
      for (int c : s.validation) val += strata[c] == g.first;
      for (int c : s.train) train += strata[c] == g.first;
      EXPECT_EQ(val + train, g.second);
      if (g.second >= 2) {
        EXPECT_GE(val, 1) << "stratum " << g.first << " (" << g.second << " cells) has no validation cell";
        EXPECT_GE(train, 1) << "stratum " << g.first << " has no training cell";
      } else {
        EXPECT_EQ(val, 0) << "a single-cell stratum must stay in training";
      }
      if (g.second >= 50) {
        EXPECT_EQ(val, static_cast<int>(std::llround(0.1 * g.second))) << "stratum " << g.first;
      }
    }
  }
}

TEST(SplitCells, FractionZeroAndErrors) {
  const CellSplit s = split_cells(10, {0, 0, 0, 1, 1, 1, 1, 2, 2, 2}, 0.0, 9);
  EXPECT_TRUE(s.validation.empty());
  EXPECT_EQ(s.train.size(), 10u);
  for (int c = 0; c < 10; ++c) EXPECT_EQ(s.train[c], c);
  EXPECT_THROW(split_cells(10, {}, -0.1, 1), std::invalid_argument);
  EXPECT_THROW(split_cells(10, {}, 1.0, 1), std::invalid_argument);
  EXPECT_THROW(split_cells(10, {0, 1}, 0.1, 1), std::invalid_argument);
}

// ---------------------------------------------------------------- scaling ---
TEST(GeneScaling, FitMatchesDirectComputation) {
  const int G = 25, C = 300;  // > 256 cells: crosses the chunk boundary
  std::vector<double> dense = example_counts(G, C, 21);
  const Csc csc = to_csc(dense, G, C);
  CscExpressionSource s(gene_names(G), C, csc.col_ptr.data(), csc.row_idx.data(), csc.values.data());
  std::vector<int> cells;
  for (int c = 0; c < C; c += 1) if (c % 7 != 3) cells.push_back(c);

  const GeneScaling fit = GeneScaling::fit(s, cells);
  ASSERT_EQ(fit.mean.size(), static_cast<size_t>(G));
  ASSERT_EQ(fit.sd.size(), static_cast<size_t>(G));
  ASSERT_EQ(fit.min.size(), static_cast<size_t>(G));
  ASSERT_EQ(fit.max.size(), static_cast<size_t>(G));

  const double n = static_cast<double>(cells.size());
  for (int g = 0; g < G; ++g) {
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    std::vector<double> v;
    for (int c : cells) {
      double lib = 0;
      for (int k = 0; k < G; ++k) lib += dense[static_cast<size_t>(c) * G + k];
      const double x = lib > 0 ? std::log1p(dense[static_cast<size_t>(c) * G + g] / lib * 1e4) : 0.0;
      v.push_back(x);
      sum += x;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    const double mean = sum / n;
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    const double sd = std::max(std::sqrt(ss / n), static_cast<double>(GeneScaling::kMinSd));
    EXPECT_NEAR(fit.mean[g], mean, 1e-4) << "mean of gene " << g;
    EXPECT_NEAR(fit.sd[g], sd, 1e-4) << "sd (population, floored) of gene " << g;
    EXPECT_NEAR(fit.min[g], lo, 1e-4) << "min of gene " << g;
    EXPECT_NEAR(fit.max[g], hi, 1e-4) << "max of gene " << g;
  }
  // Gene 1 is all zero: sd floored, range [0, 0].
  EXPECT_EQ(fit.sd[1], GeneScaling::kMinSd);
  EXPECT_EQ(fit.mean[1], 0.0f);
  EXPECT_EQ(fit.max[1], 0.0f);
  EXPECT_THROW(GeneScaling::fit(s, {}), std::invalid_argument);

  // The same pass counts each cell's detected genes, in the order of `cells`.
  std::vector<int> detected = {99};  // replaced, not appended to
  GeneScaling::fit(s, cells, &detected);
  ASSERT_EQ(detected.size(), cells.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    const int c = cells[i];
    double lib = 0;
    for (int k = 0; k < G; ++k) lib += dense[static_cast<size_t>(c) * G + k];
    int expected = 0;
    for (int g = 0; g < G; ++g) {
      expected += lib > 0 && std::log1p(dense[static_cast<size_t>(c) * G + g] / lib * 1e4) > kDetectedLevel;
    }
    EXPECT_EQ(detected[i], expected) << "cell " << c;
  }
}

// The standardised rows, three ways, to the bit: the CSC source's sparse pass,
// the default dense pass (a dense source of the same counts, and a CSC whose
// rows are out of order with a count split in two and an explicit zero), and
// fill_log_normalised() followed by (x - mean) / sd; with the raw counts
// alongside when asked for. An all-zero cell gives the zero-count constants.
TEST(ExpressionSource, StandardisedRowsAreTheSameBitsEveryWay) {
  const int G = 30, C = 9;
  const std::vector<double> dense = example_counts(G, C, 17);
  const Csc csc = to_csc(dense, G, C);
  CscExpressionSource sparse(gene_names(G), C, csc.col_ptr.data(), csc.row_idx.data(), csc.values.data());
  DenseExpressionSource full(gene_names(G), C, dense.data());
  // Cell 0's entries reversed, its first count split into two entries, and an explicit zero added.
  Csc messy = csc;
  const int first = csc.col_ptr[0], last = csc.col_ptr[1];
  std::reverse(messy.row_idx.begin() + first, messy.row_idx.begin() + last);
  std::reverse(messy.values.begin() + first, messy.values.begin() + last);
  messy.values[first] -= 1;  // a count >= 1 (Poisson + 0.5 at gene 2 or an integer >= 1)
  messy.row_idx.insert(messy.row_idx.begin() + last, {messy.row_idx[first], 1});
  messy.values.insert(messy.values.begin() + last, {1.0, 0.0});
  for (int c = 1; c <= C; ++c) messy.col_ptr[c] += 2;
  CscExpressionSource unordered(gene_names(G), C, messy.col_ptr.data(), messy.row_idx.data(), messy.values.data());

  std::vector<float> mean(G), sd(G);
  for (int g = 0; g < G; ++g) mean[g] = 0.1f * g - 1.0f, sd[g] = 0.5f + 0.05f * g;
  const std::vector<int> cells = {3, 0, C - 1, 3, 5};
  const size_t n = cells.size() * G;
  std::vector<float> expected(n), from_sparse(n), from_dense(n), from_unordered(n);
  sparse.fill_log_normalised(cells, expected.data());
  for (size_t i = 0; i < n; ++i) expected[i] = (expected[i] - mean[i % G]) / sd[i % G];
  sparse.fill_standardised(cells, mean.data(), sd.data(), from_sparse.data());
  full.fill_standardised(cells, mean.data(), sd.data(), from_dense.data());
  unordered.fill_standardised(cells, mean.data(), sd.data(), from_unordered.data());
  EXPECT_EQ(from_sparse, expected);
  EXPECT_EQ(from_dense, expected);
  EXPECT_EQ(from_unordered, expected);
  std::vector<float> counts(n), with_counts(n), dense_counts(n);
  sparse.fill_counts(cells, counts.data());
  for (const ExpressionSource* source : std::vector<const ExpressionSource*>{&sparse, &full, &unordered}) {
    std::fill(with_counts.begin(), with_counts.end(), -1.0f);
    std::fill(dense_counts.begin(), dense_counts.end(), -1.0f);
    source->fill_standardised(cells, mean.data(), sd.data(), with_counts.data(), dense_counts.data());
    EXPECT_EQ(with_counts, expected);
    EXPECT_EQ(dense_counts, counts);
  }
  for (int g = 0; g < G; ++g) EXPECT_EQ(from_sparse[2 * G + g], (0.0f - mean[g]) / sd[g]) << "the all-zero cell";
  EXPECT_THROW(sparse.fill_standardised({C}, mean.data(), sd.data(), from_sparse.data()), std::out_of_range);
}

// The minibatch every training step starts from, against the plain formula:
// (log1p(count / library * 1e4) - mean) / sd per gene, the raw counts when
// asked for (the expression identical either way), library sizes and codes.
TEST(CellBatch, MatchesThePlainFormulaWithAndWithoutCounts) {
  const int G = 20, C = 12;
  const std::vector<double> dense = example_counts(G, C, 13);
  const Csc csc = to_csc(dense, G, C);
  CscExpressionSource s(gene_names(G), C, csc.col_ptr.data(), csc.row_idx.data(), csc.values.data());
  const GeneStandardiser scale{at::linspace(-1, 1, G), at::linspace(0.5, 2, G)};
  const std::vector<int> cells = {4, 0, C - 1, 7};
  const CovariateColumns columns = {{"cell_type", std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, -1}}};
  const CellBatch plain = make_cell_batch(s, cells, columns, scale, /*with_counts=*/false, at::kCPU);
  const CellBatch counted = make_cell_batch(s, cells, columns, scale, /*with_counts=*/true, at::kCPU);
  ASSERT_EQ(plain.expression.sizes(), (std::vector<int64_t>{4, G}));
  EXPECT_FALSE(plain.counts.defined());
  EXPECT_TRUE(at::equal(plain.expression, counted.expression));
  for (size_t i = 0; i < cells.size(); ++i) {
    double lib = 0;
    for (int g = 0; g < G; ++g) lib += dense[static_cast<size_t>(cells[i]) * G + g];
    EXPECT_FLOAT_EQ(counted.library_size[i].item<float>(), static_cast<float>(lib));
    EXPECT_EQ(counted.covariates.at("cell_type")[i].item<int64_t>(), columns.at("cell_type")[cells[i]]);
    for (int g = 0; g < G; ++g) {
      const double x = dense[static_cast<size_t>(cells[i]) * G + g];
      const double logged = lib > 0 ? std::log1p(x / lib * 1e4) : 0.0;
      const double expected = (logged - scale.mean[g].item<double>()) / scale.sd[g].item<double>();
      ASSERT_NEAR(plain.expression[i][g].item<float>(), expected, 1e-5 * std::max(1.0, std::abs(expected)))
          << "cell " << cells[i] << " gene " << g;
      ASSERT_EQ(counted.counts[i][g].item<float>(), static_cast<float>(x));
    }
  }
}
