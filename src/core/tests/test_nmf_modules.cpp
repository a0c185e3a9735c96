// NMF gene modules (the `gene_sets = "nmf"` source of pathway tokens).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <string>
#include <vector>

#include "data/nmf.hpp"
#include "data/nmf_modules.hpp"
#include "error_message.hpp"
#include "two_programme_cells.hpp"

using namespace exprflow;

namespace {

// X = W H with three disjoint blocks of 6 genes: each cell expresses a random
// mix of the three programmes.
Tensor planted_matrix(int64_t cells) {
  at::Generator g = at::detail::createCPUGenerator(9);
  const Tensor w = at::rand({cells, 3}, g, at::TensorOptions().dtype(at::kFloat));  // (n, 3)
  Tensor h = at::zeros({3, 18});
  for (int64_t j = 0; j < 3; ++j) h[j].narrow(0, 6 * j, 6).fill_(1.0 + j);            // (3, 18)
  return w.matmul(h);                                                                  // (n, 18)
}

}  // namespace

TEST(Nmf, FactorsAPlantedNonNegativeMatrixDeterministically) {
  const Tensor x = planted_matrix(60);
  const NmfFactors short_run = nmf(x, 3, 20, 4);
  const NmfFactors f = nmf(x, 3, 300, 4);
  EXPECT_GE(f.cell_scores.min().item<float>(), 0.0f);
  EXPECT_GE(f.gene_weights.min().item<float>(), 0.0f);
  // Multiplicative updates never increase the error; a rank-3 matrix is fit almost exactly.
  EXPECT_LT(nmf_relative_error(x, f), nmf_relative_error(x, short_run));
  EXPECT_LT(nmf_relative_error(x, f), 0.02);
  const NmfFactors again = nmf(x, 3, 300, 4);
  EXPECT_TRUE(at::equal(again.gene_weights, f.gene_weights));
  EXPECT_FALSE(at::equal(nmf(x, 3, 300, 5).gene_weights, f.gene_weights));
  // Each planted block loads on one module alone.
  const Tensor owner = f.gene_weights.argmax(0);  // (18,)
  for (int64_t j = 0; j < 3; ++j) {
    const Tensor block = owner.narrow(0, 6 * j, 6);
    EXPECT_TRUE(at::equal(block, block[0].expand({6}))) << "block " << j;
  }
  EXPECT_EQ(std::get<0>(at::_unique(owner)).numel(), 3);
}

TEST(Nmf, RefusesNegativeOrEmptyInput) {
  EXPECT_NE(error_of([] { nmf(-at::ones({3, 3}), 2, 5, 1); }).find("non-negative"), std::string::npos);
  EXPECT_NE(error_of([] { nmf(at::ones({3, 3}), 0, 5, 1); }).find("at least 1"), std::string::npos);
}

TEST(NmfGeneModules, SeparateTheTwoProgrammesOfTheCells) {
  TwoProgrammeSettings programmes{12, 200};
  programmes.low = 0.1;  // a programme's genes are nearly silent in the other condition's cells
  const TwoProgrammeCells d = two_programme_cells(programmes);
  NmfSettings s;
  s.modules = 2;
  s.iterations = 300;
  const NamedTensor modules = nmf_gene_modules(*d.source, s);
  ASSERT_EQ(modules.shape, (std::vector<int64_t>{2, 12}));
  EXPECT_EQ(modules.row_names, (std::vector<std::string>{"nmf_1", "nmf_2"}));
  EXPECT_EQ(modules.column_names, d.source->genes());
  // Genes 0-5 are one programme, 6-11 the other: each module holds one half.
  for (int64_t j = 0; j < 2; ++j) {
    const float* row = modules.values.data() + j * 12;
    const bool first_half = row[0] == 1.0f;
    for (int g = 0; g < 12; ++g) EXPECT_EQ(row[g], (g < 6) == first_half ? 1.0f : 0.0f) << j << "," << g;
  }
  // A sample of the cells when there are more than max_cells.
  s.max_cells = 50;
  EXPECT_EQ(nmf_gene_modules(*d.source, s).shape[1], 12);
}
