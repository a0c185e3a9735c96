// Reconstruction (renoise and denoise), the NB likelihood it is scored with,
// and the latent-token encoder's weight loadings.
//
// With the exact denoiser of Gaussian data (x0_g ~ N(mu_g, s_g^2)), noising a
// real x0 and denoising it must keep the data distribution (the reverse
// process maps q(x_t) back to q(x0)), and the output forgets its input more
// the higher the noise level.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "decode/count_decoding.hpp"
#include "decode/negative_binomial.hpp"
#include "gaussian_oracle.hpp"
#include "objective/ddpm.hpp"
#include "objective/noise_schedule.hpp"
#include "sample/samplers.hpp"
#include "tokenize/latent_tokens.hpp"

using namespace exprflow;

namespace {

constexpr int64_t kGenes = 6;

Tensor gene_means() { return at::linspace(-1.0, 1.0, kGenes); }   // (G,)
Tensor gene_sds() { return at::linspace(0.4, 1.2, kGenes); }      // (G,)

Denoiser exact_denoiser(const Objective& objective) {
  return testing_oracle::gaussian_oracle(objective, gene_means(), gene_sds(), "eps");
}

Tensor real_cells(int64_t n, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return at::normal(0.0, 1.0, {n, kGenes}, gen) * gene_sds() + gene_means();  // (n, G)
}

Tensor run(double noise_level, const Tensor& x0, uint64_t seed = 5) {
  static DdpmObjective objective(NoiseSchedule("cosine", 1000), "eps", false, 0.0);
  SamplerSettings settings;
  settings.method = "ddim";
  settings.steps = 50;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return renoise_and_denoise(exact_denoiser(objective), objective, x0, {}, noise_level, settings, gen);
}

double mean_gene_correlation(const Tensor& a, const Tensor& b) {
  Tensor ac = a - a.mean(0), bc = b - b.mean(0);                              // (n, G)
  Tensor r = (ac * bc).sum(0) / (ac.pow(2).sum(0).sqrt() * bc.pow(2).sum(0).sqrt());  // (G,)
  return r.mean().item<double>();
}

}  // namespace

TEST(Reconstruct, NoiseLevelZeroReturnsTheInput) {
  Tensor x0 = real_cells(10, 1);
  EXPECT_TRUE(at::equal(run(0.0, x0), x0));
}

TEST(Reconstruct, KeepsTheDataDistribution) {
  Tensor x0 = real_cells(6000, 2);
  Tensor out = run(0.5, x0);
  Tensor mean = out.mean(0), sd = out.std(0);
  for (int64_t g = 0; g < kGenes; ++g) {
    EXPECT_NEAR(mean[g].item<double>(), gene_means()[g].item<double>(), 0.05) << "gene " << g;
    EXPECT_NEAR(sd[g].item<double>(), gene_sds()[g].item<double>(), 0.08) << "gene " << g;
  }
}

TEST(Reconstruct, ForgetsMoreWithMoreNoise) {
  Tensor x0 = real_cells(3000, 3);
  const double low = mean_gene_correlation(x0, run(0.2, x0));
  const double mid = mean_gene_correlation(x0, run(0.6, x0));
  const double full = mean_gene_correlation(x0, run(1.0, x0));
  EXPECT_GT(low, 0.85);
  EXPECT_GT(low, mid);
  EXPECT_GT(mid, full);
  EXPECT_LT(std::abs(full), 0.06);  // x_T is independent of x0
}

TEST(Reconstruct, RejectsBadNoiseLevels) {
  Tensor x0 = real_cells(4, 4);
  EXPECT_THROW(run(-0.1, x0), std::invalid_argument);
  EXPECT_THROW(run(1.5, x0), std::invalid_argument);
  EXPECT_THROW(run(std::nan(""), x0), std::invalid_argument);
}

TEST(NbLikelihood, MatchesTheClosedForm) {
  const std::vector<float> counts = {0, 3, 10};
  const std::vector<double> mu = {0.5, 2.0, 12.0};
  const std::vector<double> theta = {2.0, kPoissonTheta, 0.7};
  double expected = 0;
  // NB(y; mu, theta) for genes 0 and 2, Poisson for gene 1.
  for (int g : {0, 2}) {
    const double y = counts[g], m = mu[g], th = theta[g];
    expected += std::lgamma(y + th) - std::lgamma(th) - std::lgamma(y + 1) + th * std::log(th / (th + m)) +
                y * std::log(m / (th + m));
  }
  expected += 3 * std::log(2.0) - 2.0 - std::lgamma(4.0);
  EXPECT_NEAR(nb_log_likelihood(counts.data(), mu.data(), 3, theta), expected, 1e-9);
}

TEST(NbLikelihood, ZeroMeanGivesAFinitePenalty) {
  const std::vector<float> counts = {2};
  const std::vector<double> mu = {0.0};
  const double ll = nb_log_likelihood(counts.data(), mu.data(), 1, {kPoissonTheta});
  EXPECT_TRUE(std::isfinite(ll));
  EXPECT_LT(ll, -20);
}

TEST(ExpectedCounts, SumToTheLibrarySize) {
  const std::vector<float> logcounts = {0.0f, std::log1p(3.0f), std::log1p(1.0f), -0.5f};
  std::vector<double> mu(4);
  expected_counts(logcounts.data(), 4, 80.0, mu.data());
  EXPECT_DOUBLE_EQ(mu[0], 0.0);
  EXPECT_DOUBLE_EQ(mu[3], 0.0);  // negative expression counts as zero
  EXPECT_NEAR(mu[1], 60.0, 1e-9);
  EXPECT_NEAR(mu[2], 20.0, 1e-9);
}

TEST(LatentTokenLoadings, AreTheNormOfTheLinearPath) {
  at::manual_seed(3);
  LatentTokenEncoder encoder(5, 7, 3, 4);  // G = 5, hidden = 7, m = 3 tokens of d = 4
  Tensor loadings = encoder->weight_loadings();  // (m, G)
  ASSERT_EQ(loadings.sizes(), (std::vector<int64_t>{3, 5}));
  Tensor w_in = encoder->named_parameters()["linear_in.weight"];    // (7, 5)
  Tensor w_out = encoder->named_parameters()["linear_out.weight"];  // (12, 7)
  for (int64_t k = 0; k < 3; ++k) {
    for (int64_t g = 0; g < 5; ++g) {
      double sum_sq = 0;
      for (int64_t j = 0; j < 4; ++j) {
        double v = 0;
        for (int64_t h = 0; h < 7; ++h) {
          v += w_out[k * 4 + j][h].item<double>() * w_in[h][g].item<double>();
        }
        sum_sq += v * v;
      }
      EXPECT_NEAR(loadings[k][g].item<double>(), std::sqrt(sum_sq), 1e-5);
    }
  }
}
