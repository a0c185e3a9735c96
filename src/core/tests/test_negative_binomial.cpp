// Decode stage: counts from generated expression, and NB dispersion estimation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/expression_source.hpp"
#include "decode/count_decoding.hpp"
#include "decode/negative_binomial.hpp"

using namespace exprflow;

namespace {

// Log-normalised expression whose normalised proportions are `p`.
std::vector<float> logcounts_for(const std::vector<double>& p) {
  std::vector<float> x(p.size());
  for (size_t g = 0; g < p.size(); ++g) x[g] = static_cast<float>(std::log1p(p[g] * 1e4));
  return x;
}

}  // namespace

namespace {

// Genes x cells counts (column-major): cell c has library size L_c
// log-uniform in [2000, 20000]; gene g has proportion p[g] and is Poisson
// (theta infinite) or gamma-Poisson NB(p_g L_c, theta_g).
std::vector<double> simulate_counts(const std::vector<double>& p, const std::vector<double>& theta, int C,
                                    uint64_t seed) {
  const int G = static_cast<int>(p.size());
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> log_lib(std::log(2000.0), std::log(20000.0));
  std::vector<double> dense(static_cast<size_t>(G) * C);
  for (int c = 0; c < C; ++c) {
    const double L = std::exp(log_lib(rng));
    for (int g = 0; g < G; ++g) {
      double rate = p[g] * L;
      if (std::isfinite(theta[g])) rate = std::gamma_distribution<double>(theta[g], rate / theta[g])(rng);
      dense[static_cast<size_t>(c) * G + g] = std::poisson_distribution<int>(rate)(rng);
    }
  }
  return dense;
}

std::vector<std::string> names(int G) {
  std::vector<std::string> genes;
  for (int g = 0; g < G; ++g) genes.push_back("g" + std::to_string(g));
  return genes;
}

std::vector<int> all_cells(int C) {
  std::vector<int> cells(C);
  for (int c = 0; c < C; ++c) cells[c] = c;
  return cells;
}

}  // namespace

TEST(EstimateNbTheta, RecoversSimulatedDispersions) {
  // 20 genes, 3000 cells. Genes 0..7 are Poisson and carry 64% of the counts
  // (stable size factors); genes 8..19 are NB with theta in
  // {0.5, 1, 2, 4, 8, 16} (twice each) and proportion 0.03 each.
  const int G = 20, C = 3000;
  std::vector<double> p(G), theta(G);
  const double nb_theta[6] = {0.5, 1, 2, 4, 8, 16};
  for (int g = 0; g < G; ++g) {
    p[g] = g < 8 ? 0.08 : 0.03;
    theta[g] = g < 8 ? INFINITY : nb_theta[(g - 8) % 6];
  }
  const std::vector<double> dense = simulate_counts(p, theta, C, 12345);
  DenseExpressionSource data(names(G), C, dense.data());
  const std::vector<int> cells = all_cells(C);

  const std::vector<double> est = estimate_nb_theta(data, cells);
  ASSERT_EQ(est.size(), static_cast<size_t>(G));
  // Relative SE of the sample variance: <= sqrt((excess kurtosis 6/theta + 2) / n)
  // = 7% at theta 0.5. Size factors estimated from the counts themselves add
  // a bias of a few % (each gene is part of its own size factor, and the NB
  // genes add noise of about sum p^2 / theta = 0.007 to 1 / theta).
  // 25% is several standard errors.
  for (int g = 8; g < G; ++g) {
    EXPECT_NEAR(est[g] / theta[g], 1.0, 0.25) << "gene " << g << ": theta " << theta[g] << ", estimated " << est[g];
  }
  // Poisson genes come out far less overdispersed than any NB gene (not
  // exactly Poisson here: the NB genes' noise in the size factors is seen
  // as an excess variance of about 0.007 mu^2, i.e. theta near 140).
  for (int g = 0; g < 8; ++g) EXPECT_GT(est[g], 50.0) << "Poisson gene " << g;

  // A subset of cells gives a similar answer (uses only those cells).
  std::vector<int> half(cells.begin(), cells.begin() + C / 2);
  const std::vector<double> est_half = estimate_nb_theta(data, half);
  for (int g = 8; g < G; ++g) EXPECT_NEAR(est_half[g] / theta[g], 1.0, 0.35) << "gene " << g;

  EXPECT_THROW(estimate_nb_theta(data, {}), std::invalid_argument);
}

TEST(EstimateNbTheta, PoissonGenesGetPoissonTheta) {
  // All genes Poisson, library sizes varying tenfold. Since every gene is
  // part of its own size factor, its normalised variance falls short of the
  // Poisson one by a fraction of about p_g: for the four genes with p = 0.15
  // that is 15% against a sampling SE of sqrt(2 / 3000) = 2.6%, so the excess
  // is negative and theta must be exactly kPoissonTheta. The 16 small genes
  // (p = 0.025) sit within noise of zero excess: any estimate must still be
  // huge (theta > 1000, i.e. an overdispersion invisible next to Poisson noise).
  const int G = 20, C = 3000;
  std::vector<double> p(G), theta(G, INFINITY);
  for (int g = 0; g < G; ++g) p[g] = g < 4 ? 0.15 : 0.025;
  const std::vector<double> dense = simulate_counts(p, theta, C, 777);
  DenseExpressionSource data(names(G), C, dense.data());
  const std::vector<double> est = estimate_nb_theta(data, all_cells(C));
  for (int g = 0; g < 4; ++g) EXPECT_EQ(est[g], kPoissonTheta) << "Poisson gene " << g << " got " << est[g];
  for (int g = 4; g < G; ++g) EXPECT_GT(est[g], 1000.0) << "Poisson gene " << g;
}

TEST(EstimateNbTheta, AllZeroGeneIsPoisson) {
  const int G = 3, C = 50;
  std::vector<double> dense(G * C, 0.0);
  for (int c = 0; c < C; ++c) {
    dense[c * G + 0] = 5 + c % 3;
    dense[c * G + 2] = 10 + (c * 7) % 11;
  }
  DenseExpressionSource data({"a", "b", "c"}, C, dense.data());
  std::vector<int> cells(C);
  for (int c = 0; c < C; ++c) cells[c] = c;
  const std::vector<double> est = estimate_nb_theta(data, cells);
  EXPECT_EQ(est[1], kPoissonTheta);
  for (double t : est) {
    EXPECT_GE(t, 1e-3);
    EXPECT_LE(t, kPoissonTheta);
  }
}

TEST(RoundCounts, KeepTheExpectedCountsOnAverage) {
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05, 0.0};
  const std::vector<float> x = logcounts_for(p);
  const int G = static_cast<int>(p.size()), n = 20000;
  const double lib = 13.0;  // expected counts 6.5, 3.9, 1.95, 0.65, 0
  std::mt19937_64 rng(11);
  std::vector<int32_t> counts(G);
  std::vector<double> sum(G, 0.0);
  for (int i = 0; i < n; ++i) {
    round_counts(x.data(), G, lib, rng, counts.data());
    for (int g = 0; g < G; ++g) {
      const double mu = p[g] * lib;
      // Every draw is the floor or the ceiling of the expected count.
      EXPECT_TRUE(counts[g] == std::floor(mu) || counts[g] == std::ceil(mu)) << "gene " << g;
      sum[g] += counts[g];
    }
  }
  for (int g = 0; g < G; ++g) EXPECT_NEAR(sum[g] / n, p[g] * lib, 0.01) << "gene " << g;
}

TEST(RoundCounts, ZeroExpressionAndNegativeInput) {
  const int G = 4;
  std::vector<float> x = {0.0f, -1.0f, 0.0f, 0.0f};  // negative log-expression counts as zero
  std::vector<int32_t> counts(G, -7);
  std::mt19937_64 rng(3);
  round_counts(x.data(), G, 1000.0, rng, counts.data());
  for (int g = 0; g < G; ++g) EXPECT_EQ(counts[g], 0) << "gene " << g;
  std::vector<float> y = logcounts_for({0.5, 0.5, 0.0, 0.0});
  round_counts(y.data(), G, 0.0, rng, counts.data());  // library size zero: zero counts
  for (int g = 0; g < G; ++g) EXPECT_EQ(counts[g], 0) << "gene " << g;
}
