// "matched" library sizes of gene-space models (data/library_sizes.hpp): the
// training cells' sizes go to the generated cells in the order of their
// detected genes, so a cell that looks shallow is not given a deep library
// (and the reverse), and the sizes keep the training cells' distribution.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/expression_source.hpp"
#include "exprflow/api.hpp"

using namespace exprflow;

namespace {

constexpr int kGenes = 24, kCells = 400, kRare = 16;

// One cell type at two depths: even cells ~150 counts, odd cells ~6,000.
// The first kRare genes are rare (share 0.0015 each): a shallow cell detects
// about 20% of them, a deep cell nearly all. Depth is all that differs.
struct DepthCells {
  std::vector<double> counts;  // genes x cells, column-major
  std::unique_ptr<DenseExpressionSource> source;
};

const DepthCells& depth_cells() {
  static const DepthCells d = [] {
    DepthCells d;
    std::mt19937_64 rng(11);
    std::vector<double> share(kGenes, 0.0015);
    const double rest = (1.0 - kRare * 0.0015) / (kGenes - kRare);
    for (int g = kRare; g < kGenes; ++g) share[g] = rest;
    d.counts.resize(static_cast<size_t>(kGenes) * kCells);
    for (int c = 0; c < kCells; ++c) {
      const double depth = c % 2 == 0 ? 150.0 : 6000.0;
      for (int g = 0; g < kGenes; ++g) {
        d.counts[static_cast<size_t>(c) * kGenes + g] = std::poisson_distribution<int>(share[g] * depth)(rng);
      }
    }
    std::vector<std::string> genes;
    for (int g = 0; g < kGenes; ++g) genes.push_back("g" + std::to_string(g));
    d.source = std::make_unique<DenseExpressionSource>(genes, kCells, d.counts.data());
    return d;
  }();
  return d;
}

// The share of rare genes detected in the generated cells given a deep library.
double deep_cells_rare_detection(const GeneratedCells& cells) {
  double detected = 0, deep = 0;
  for (int c = 0; c < cells.n_cells; ++c) {
    if (cells.library_size[c] < 3000) continue;
    deep += 1;
    for (int g = 0; g < kRare; ++g) detected += cells.counts[static_cast<size_t>(c) * kGenes + g] > 0 ? 1 : 0;
  }
  EXPECT_GT(deep, 40) << "a good share of the generated cells get a deep library";
  return deep > 0 ? detected / (deep * kRare) : 0.0;
}

Options sampling(const std::string& library_size) {
  Options o;
  o.set("seed", 4).set("steps", 20);
  if (!library_size.empty()) o.set("library_size", library_size);
  return o;
}

}  // namespace

TEST(MatchedLibrarySize, DeepLibrariesGoToCellsThatLookDeep) {
  Options spec;
  spec.set("architecture", "state_mlp").set("hidden", 64).set("n_layers", 2).set("seed", 3);
  auto model = GenerativeModel::create(spec, depth_cells().source->genes(), {});
  Options train;
  train.set("epochs", 40).set("batch_size", 64).set("learning_rate", 3e-3).set("validation_fraction", 0.1)
      .set("patience", 0).set("seed", 2);
  model->train(*depth_cells().source, {}, train, {});

  // Real deep cells detect ~100% of the rare genes. Drawn at random, a deep
  // library often lands on a generated cell that looks shallow, whose few
  // rare values stay few; matched, it lands on cells that look deep.
  const std::vector<int> cells(200, -1);
  const GeneratedCells empirical = model->generate(cells, sampling("empirical"));
  const GeneratedCells matched = model->generate(cells, sampling("matched"));
  const double empirical_rate = deep_cells_rare_detection(empirical);
  const double matched_rate = deep_cells_rare_detection(matched);
  EXPECT_GT(matched_rate, 0.85);
  EXPECT_GT(matched_rate, empirical_rate + 0.1) << "empirical " << empirical_rate << ", matched " << matched_rate;
  // Half the training cells are deep; by rank, half the generated ones too.
  int deep = 0;
  for (double size : matched.library_size) deep += size > 3000 ? 1 : 0;
  EXPECT_NEAR(deep, 100, 8);
  // Same sample, other sizes: the log expression is the same draw.
  EXPECT_EQ(matched.logcounts, empirical.logcounts);
  // "matched" is the default of a gene-space model, and survives save / load.
  EXPECT_EQ(model->generate(cells, sampling("")).counts, matched.counts);
  auto loaded = GenerativeModel::load_bytes(model->to_bytes());
  EXPECT_EQ(loaded->generate(cells, sampling("")).counts, matched.counts);
}

TEST(MatchedLibrarySize, LatentModelsRefuseIt) {
  Options spec;
  spec.set("architecture", "vae").set("latent_dim", 4).set("vae_hidden", 16).set("seed", 3);
  auto model = GenerativeModel::create(spec, depth_cells().source->genes(), {});
  Options train;
  train.set("epochs", 1).set("batch_size", 64).set("validation_fraction", 0.1).set("seed", 2);
  model->train(*depth_cells().source, {}, train, {});
  const std::vector<int> cells(4, -1);
  EXPECT_NO_THROW(model->generate(cells, sampling("")));
  EXPECT_THROW(model->generate(cells, sampling("matched")), std::invalid_argument);
}
