// Decode stage: integer counts that hold a log1p-normalised value in
// expectation (decode/log_rounding.hpp).
//
// The tensor version against the scalar reference with the same uniforms;
// the mean log value of many draws is the asked one; a value that is an
// integer count's gives that count whatever the draw; draws are the two
// neighbouring counts; cells without counts stay empty; errors.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "decode/log_rounding.hpp"

using namespace exprflow;

namespace {

double log_value(double count, double library) { return std::log1p(count * kNormalisationTarget / library); }

}  // namespace

TEST(LogRounding, TensorMatchesTheScalarReferenceDrawForDraw) {
  const std::vector<double> values = {0.0, 0.01, 0.3, 1.0, 1.79, 2.5, 4.2, 6.9};
  const std::vector<double> libraries = {500.0, 2000.0, 31000.0};
  const int64_t B = static_cast<int64_t>(libraries.size()), G = static_cast<int64_t>(values.size());
  Tensor h = at::empty({B, G}, at::TensorOptions().dtype(at::kDouble));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = 0; g < G; ++g) h[b][g] = values[g] + 0.001 * b;
  }
  const Tensor library = at::tensor(libraries, at::TensorOptions().dtype(at::kDouble));
  const Tensor counts = round_in_log_space(h, library, at::detail::createCPUGenerator(7));  // (B, G)
  // The same uniforms, in the order the tensor version draws them.
  const Tensor u = at::rand({B, G}, at::detail::createCPUGenerator(7), at::TensorOptions().dtype(at::kDouble));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = 0; g < G; ++g) {
      const double expected = round_in_log_space(h[b][g].item<double>(), libraries[b], u[b][g].item<double>());
      EXPECT_EQ(counts[b][g].item<double>(), expected) << "cell " << b << ", value " << values[g];
    }
  }
}

TEST(LogRounding, MeanLogValueOfTheDrawsIsTheAskedValue) {
  const int64_t draws = 40000;
  for (double library : {800.0, 2000.0, 20000.0}) {
    for (double h : {0.05, 0.3, 1.1, 2.9, 5.0}) {
      const Tensor counts = round_in_log_space(at::full({draws, 1}, h, at::TensorOptions().dtype(at::kDouble)),
                                               at::full({draws}, library, at::TensorOptions().dtype(at::kDouble)),
                                               at::detail::createCPUGenerator(3));  // (draws, 1)
      const Tensor logs = at::log1p(counts * (kNormalisationTarget / library));
      const double mean = logs.mean().item<double>(), sd = logs.std().item<double>();
      EXPECT_NEAR(mean, h, 4 * sd / std::sqrt(static_cast<double>(draws)) + 1e-12)
          << "library " << library << ", value " << h;
      // Only the two counts that bracket h.
      const double lower = std::floor(std::expm1(h) * library / kNormalisationTarget);
      EXPECT_GE(counts.min().item<double>(), lower);
      EXPECT_LE(counts.max().item<double>(), lower + 1);
    }
  }
}

TEST(LogRounding, TheLogValueOfACountGivesThatCount) {
  for (double library : {1000.0, 2345.0, 50000.0}) {
    for (double count : {0.0, 1.0, 2.0, 17.0, 250.0, 4000.0}) {
      for (double u : {0.0, 0.5, 0.999999}) {
        EXPECT_EQ(round_in_log_space(log_value(count, library), library, u), count)
            << "count " << count << ", library " << library << ", u " << u;
      }
    }
  }
}

TEST(LogRounding, CellsWithoutCountsStayEmpty) {
  const Tensor counts = round_in_log_space(at::full({2, 3}, 1.5, at::TensorOptions().dtype(at::kDouble)),
                                           at::tensor({0.0, 1000.0}, at::TensorOptions().dtype(at::kDouble)),
                                           at::detail::createCPUGenerator(1));  // (2, 3)
  EXPECT_EQ(counts[0].abs().sum().item<double>(), 0.0);
  EXPECT_GT(counts[1].sum().item<double>(), 0.0);
}

TEST(LogRounding, RefusesNegativeValuesNaNAndMismatchedShapes) {
  EXPECT_THROW(round_in_log_space(-0.1, 1000.0, 0.5), std::invalid_argument);
  EXPECT_THROW(round_in_log_space(at::full({1, 2}, std::nan(""), at::TensorOptions().dtype(at::kDouble)),
                                  at::ones({1}, at::TensorOptions().dtype(at::kDouble)),
                                  at::detail::createCPUGenerator(1)),
               std::invalid_argument);
  EXPECT_THROW(round_in_log_space(0.5, 0.0, 0.5), std::invalid_argument);
  EXPECT_THROW(round_in_log_space(at::zeros({2, 3}), at::ones({3}), at::detail::createCPUGenerator(1)),
               std::invalid_argument);
}
