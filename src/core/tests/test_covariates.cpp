// Models of several categorical covariates: each covariate's effect is
// learnt and can be guided on its own, library sizes fall back to fewer
// covariates for combinations without training cells, and model files (new
// and one-condition ones) keep what they hold.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "api/model_file.hpp"
#include "data/expression_source.hpp"
#include "data/library_sizes.hpp"
#include "error_message.hpp"
#include "exprflow/api.hpp"
#include "sample/guidance.hpp"
#include "sample/samplers.hpp"

using namespace exprflow;

namespace {

constexpr int kGenes = 24;

// Cell type T0 expresses genes 0-7 highly, T1 genes 8-15; "stim" raises genes
// 16-23 four-fold. T0 cells have library sizes 1000-2000, T1 cells 4000-5000.
struct TwoCovariateCells {
  std::vector<double> counts;
  CovariateCodes codes;
  std::unique_ptr<DenseExpressionSource> source;
};

std::vector<double> proportions(int type, int stim) {
  std::vector<double> w(kGenes);
  for (int g = 0; g < kGenes; ++g) {
    if (g < 8) w[g] = type == 0 ? 10.0 : 1.0;
    else if (g < 16) w[g] = type == 1 ? 10.0 : 1.0;
    else w[g] = stim == 1 ? 8.0 : 2.0;
  }
  double total = 0;
  for (double v : w) total += v;
  for (double& v : w) v /= total;
  return w;
}

TwoCovariateCells two_covariate_cells(const std::vector<std::pair<int, int>>& combinations, int per_combination,
                                      uint64_t seed) {
  TwoCovariateCells d;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  const int n = static_cast<int>(combinations.size()) * per_combination;
  d.counts.resize(static_cast<size_t>(kGenes) * n);
  std::vector<int>& type = d.codes["type"];
  std::vector<int>& stim = d.codes["stim"];
  for (int c = 0; c < n; ++c) {
    const auto [t, s] = combinations[c % combinations.size()];
    type.push_back(t);
    stim.push_back(s);
    const double library = (t == 0 ? 1000.0 : 4000.0) + 1000.0 * unit(rng);
    const std::vector<double> p = proportions(t, s);
    for (int g = 0; g < kGenes; ++g) {
      d.counts[static_cast<size_t>(c) * kGenes + g] = std::poisson_distribution<int>(library * p[g])(rng);
    }
  }
  std::vector<std::string> genes;
  for (int g = 0; g < kGenes; ++g) genes.push_back("g" + std::to_string(g));
  d.source = std::make_unique<DenseExpressionSource>(genes, n, d.counts.data());
  return d;
}

std::vector<Covariate> two_covariates() { return {{"type", {"T0", "T1"}}, {"stim", {"ctrl", "stim"}}}; }

// Mean generated log expression of genes [lo, hi).
double mean_of(const GeneratedCells& cells, int lo, int hi) {
  double sum = 0;
  for (int i = 0; i < cells.n_cells; ++i) {
    for (int g = lo; g < hi; ++g) sum += cells.logcounts[static_cast<size_t>(i) * kGenes + g];
  }
  return sum / (static_cast<double>(cells.n_cells) * (hi - lo));
}

CovariateCodes asked(int n, int type, int stim) { return {{"type", std::vector<int>(n, type)}, {"stim", std::vector<int>(n, stim)}}; }

}  // namespace

TEST(Covariates, EachEffectIsLearntAndGuidedOnItsOwn) {
  const TwoCovariateCells d = two_covariate_cells({{0, 0}, {0, 1}, {1, 0}, {1, 1}}, 75, 7);
  Options spec;
  spec.set("architecture", "state_mlp").set("seed", 3).set("hidden", 64).set("n_layers", 2);
  auto model = GenerativeModel::create_with_covariates(spec, d.source->genes(), two_covariates());
  const Options train = Options().set("epochs", 60).set("batch_size", 32).set("learning_rate", 3e-3)
                            .set("validation_fraction", 0.1).set("seed", 2);
  model->train(*d.source, d.codes, train, {});

  // Stratified by combination (75 cells each: 8 to validation); the
  // annotations count cells per level of each covariate.
  EXPECT_EQ(model->annotations().number("validation_cells:stim=stim"), 16.0);
  EXPECT_EQ(model->annotations().number("training_cells:type=T1"), 134.0);

  Options sample = Options().set("seed", 4).set("steps", 30);
  const int n = 200;
  const auto stim_shift = [&](int type, const Options& o) {
    return mean_of(model->generate(asked(n, type, 1), o), 16, 24) - mean_of(model->generate(asked(n, type, 0), o), 16, 24);
  };
  for (int type : {0, 1}) {
    for (int stim : {0, 1}) {
      // The type effect: each type expresses its own programme, either way.
      const GeneratedCells cells = model->generate(asked(n, type, stim), sample);
      const double own = mean_of(cells, 8 * type, 8 * type + 8), other = mean_of(cells, 8 - 8 * type, 16 - 8 * type);
      EXPECT_GT(own, other + 1.0) << "type " << type << ", stim " << stim;
    }
    // The stimulation effect: about log(4) = 1.4 on the stim genes in the data.
    EXPECT_GT(stim_shift(type, sample), 0.8) << "type " << type;
  }
  // Guidance by stim alone scales the stimulation effect and keeps the
  // type's: scale 0 is "stim unknown" (the shift vanishes), 0.5 is between.
  // (Larger scales saturate here at the clipping box of the training range.)
  Options guided = sample;
  guided.set("guidance_scale", Options().set("stim", 0.0));
  EXPECT_LT(std::abs(stim_shift(1, guided)), 0.05);
  const GeneratedCells t1_unknown_stim = model->generate(asked(n, 1, 1), guided);
  EXPECT_GT(mean_of(t1_unknown_stim, 8, 16), mean_of(t1_unknown_stim, 0, 8) + 1.0);
  guided.set("guidance_scale", Options().set("stim", 0.5));
  const double half = stim_shift(1, guided), full = stim_shift(1, sample);
  EXPECT_GT(half, 0.3);
  EXPECT_LT(half, full);
  guided.set("guidance_scale", Options().set("stim", 1.0).set("type", 1.0));
  EXPECT_EQ(model->generate(asked(5, 1, 1), guided).counts, model->generate(asked(5, 1, 1), sample).counts);
  const GeneratedCells t1_stim = model->generate(asked(n, 1, 1), sample);

  // Covariates not given are unconditional; the one-condition form is
  // refused for a model of several covariates; unknown names are named.
  EXPECT_EQ(model->generate(CovariateCodes{{"stim", {1, 1, 0}}}, sample).n_cells, 3);
  EXPECT_TRUE(mentions(error_of([&] { model->generate(std::vector<int>{0, 1}, sample); }), "by covariate name"));
  EXPECT_TRUE(mentions(error_of([&] { model->generate(CovariateCodes{{"dose", {0}}}, sample); }), "'dose'"));
  EXPECT_TRUE(mentions(error_of([&] { model->generate(CovariateCodes{{"stim", {2}}}, sample); }), "'stim'"));
  EXPECT_TRUE(mentions(error_of([&] { model->condition_levels(); }), "covariates"));

  guided.set("guidance_scale", Options().set("dose", 2.0));
  EXPECT_TRUE(mentions(error_of([&] { model->generate(asked(5, 1, 1), guided); }), "'dose'"));

  // Transfer modes. Moving stim only: "joint" keeps the type both ways,
  // "marginal" leaves it unknown, "contrast" adds the stim contrast to the
  // cell's own flow; each moves the stim genes up. When every covariate
  // changes, the three agree (contrast: out(from) + out(to) - out(from)).
  const Options steps = Options().set("steps", 20).set("seed", 1);
  CovariateCodes to_stim = d.codes, swapped = d.codes;
  for (int& s : to_stim["stim"]) s = 1;
  for (int& t : swapped["type"]) t = 1 - t;
  for (int& s : swapped["stim"]) s = 1 - s;
  const auto stim_genes_of_ctrl_cells = [&](const GeneratedCells& cells) {
    double sum = 0;
    int n_ctrl = 0;
    for (int i = 0; i < cells.n_cells; ++i) {
      if (d.codes.at("stim")[i] != 0) continue;
      ++n_ctrl;
      for (int g = 16; g < 24; ++g) sum += cells.logcounts[static_cast<size_t>(i) * kGenes + g];
    }
    return sum / (8.0 * n_ctrl);
  };
  const double before = stim_genes_of_ctrl_cells(model->transfer(*d.source, d.codes, d.codes, steps));
  for (const char* mode : {"joint", "marginal", "contrast"}) {
    Options o = steps;
    o.set("transfer", mode);
    EXPECT_GT(stim_genes_of_ctrl_cells(model->transfer(*d.source, d.codes, to_stim, o)), before + 0.8) << mode;
  }
  Options joint = steps, marginal = steps, contrast = steps;
  marginal.set("transfer", "marginal");
  contrast.set("transfer", "contrast");
  const GeneratedCells all_joint = model->transfer(*d.source, d.codes, swapped, joint);
  EXPECT_EQ(model->transfer(*d.source, d.codes, swapped, marginal).logcounts, all_joint.logcounts);
  const GeneratedCells all_contrast = model->transfer(*d.source, d.codes, swapped, contrast);
  for (size_t i = 0; i < all_joint.logcounts.size(); ++i) {
    ASSERT_NEAR(all_contrast.logcounts[i], all_joint.logcounts[i], 1e-3);
  }
  contrast.set("transfer", "sideways");
  EXPECT_TRUE(mentions(error_of([&] { model->transfer(*d.source, d.codes, swapped, contrast); }), "'sideways'"));

  // The file keeps the covariates and the library sizes with their codes.
  const std::string path = ::testing::TempDir() + "exprflow_covariates.pt";
  model->save(path);
  auto loaded = GenerativeModel::load(path);
  std::remove(path.c_str());
  ASSERT_EQ(loaded->covariates().size(), 2u);
  EXPECT_EQ(loaded->covariates()[1].name, "stim");
  EXPECT_EQ(loaded->covariates()[1].levels, (std::vector<std::string>{"ctrl", "stim"}));
  const GeneratedCells again = loaded->generate(asked(n, 1, 1), sample);
  EXPECT_EQ(again.counts, t1_stim.counts);
  EXPECT_EQ(again.library_size, t1_stim.library_size);
}

TEST(Covariates, NamesMustBeUniqueAndLevelsPresent) {
  Options spec;
  spec.set("architecture", "state_mlp");
  const std::vector<std::string> genes = {"a", "b"};
  EXPECT_TRUE(mentions(error_of([&] {
    GenerativeModel::create_with_covariates(spec, genes, {{"x", {"1"}}, {"x", {"2"}}});
  }), "'x' is given twice"));
  EXPECT_TRUE(mentions(error_of([&] { GenerativeModel::create_with_covariates(spec, genes, {{"x", {}}}); }),
                       "'x' has no levels"));
}

// out = out(c) + sum_a (w_a - 1) (out(c) - out(c without a)), in one call.
TEST(Guidance, PerCovariateScalesGuideEachAttributeGivenTheOthers) {
  int calls = 0;
  // value = x + 10 a + 100 b (+ 1000 a b: an interaction), null codes -1.
  Denoiser toy = [&calls](const Tensor& x_t, const Tensor&, const Covariates& c) {
    ++calls;
    Tensor a = c.at("a").to(at::kFloat).unsqueeze(1), b = c.at("b").to(at::kFloat).unsqueeze(1);
    return GeneOutput{x_t + 10 * a + 100 * b + 1000 * a * b, Tensor()};
  };
  const Tensor x = at::randn({4, 3}), t = at::full({4}, 0.5);
  const Covariates c{{"a", at::tensor(std::vector<int64_t>{0, 1, 1, 2})},
                     {"b", at::tensor(std::vector<int64_t>{1, 0, 2, 1})}};
  const auto value = [&](const Covariates& k) { return toy(x, t, k).value; };
  Covariates no_a = c, no_b = c;
  no_a["a"] = at::full_like(c.at("a"), -1);
  no_b["b"] = at::full_like(c.at("b"), -1);

  GuidanceScales scales;
  scales.per_covariate = {{"a", 3.0}, {"b", 0.5}};
  calls = 0;
  const Tensor guided = with_covariate_guidance(toy, scales)(x, t, c).value;
  EXPECT_EQ(calls, 1) << "all branches should run as one batched call";
  const Tensor full = value(c);
  const Tensor expected = full + 2.0 * (full - value(no_a)) - 0.5 * (full - value(no_b));
  EXPECT_TRUE(at::allclose(guided, expected, 1e-4, 1e-4));

  // One covariate: the same as ordinary classifier-free guidance.
  Denoiser one = [](const Tensor& x_t, const Tensor&, const Covariates& k) {
    return GeneOutput{x_t * 2 + 5 * k.at("a").to(at::kFloat).unsqueeze(1), Tensor()};
  };
  const Covariates only_a{{"a", c.at("a")}};
  GuidanceScales per_a;
  per_a.per_covariate = {{"a", 2.5}};
  EXPECT_TRUE(at::allclose(with_covariate_guidance(one, per_a)(x, t, only_a).value,
                           with_guidance(one, 2.5)(x, t, only_a).value, 1e-5, 1e-5));

  // Parsing the sample option: a number, or nested options by covariate.
  const std::vector<Covariate> covariates = {{"a", {"0", "1", "2"}}, {"b", {"0", "1", "2"}}};
  EXPECT_EQ(guidance_scales(Options().set("guidance_scale", 2.0), covariates).joint, 2.0);
  const GuidanceScales parsed =
      guidance_scales(Options().set("guidance_scale", Options().set("b", 4.0).set("a", 1.0)), covariates);
  EXPECT_EQ(parsed.per_covariate.size(), 1u) << "a scale of 1 is no guidance";
  EXPECT_EQ(parsed.per_covariate.at("b"), 4.0);
  EXPECT_TRUE(mentions(error_of([&] {
    guidance_scales(Options().set("guidance_scale", Options().set("c", 2.0)), covariates);
  }), "'c'"));
}

TEST(LibrarySizePools, FallBackToFewerCovariatesTheLastFirst) {
  LibrarySizePools pools(2);
  pools.add({0, 0}, 10);
  pools.add({0, 1}, 20);
  pools.add({1, 0}, 30);
  pools.add({-1, -1}, 40);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(pools.draw({0, 1}, "empirical", rng), 20.0);          // seen
    EXPECT_EQ(pools.draw({1, 1}, "empirical", rng), 30.0);          // unseen: type 1 of any stim
    EXPECT_EQ(pools.draw({-1, 0}, "empirical", rng) == 40.0, false);  // -1 matches any level; 40 has stim -1
    const double any = pools.draw({-1, -1}, "empirical", rng);
    EXPECT_TRUE(any == 10 || any == 20 || any == 30 || any == 40);
  }
  EXPECT_NEAR(pools.draw({1, 1}, "lognormal", rng), 30.0, 1e-9) << "one cell: no spread";
  EXPECT_THROW(pools.draw({0}, "empirical", rng), std::invalid_argument);
  EXPECT_THROW(LibrarySizePools(1).draw({0}, "empirical", rng), std::invalid_argument);
}

// Files of one condition held a pool per level and a pool of all cells.
TEST(LibrarySizePools, ReadTheOnePoolPerLevelLayoutOfEarlierFiles) {
  TensorBundle bundle;
  const auto doubles = at::TensorOptions().dtype(at::kDouble);
  bundle.put("library_sizes_0", at::tensor(std::vector<double>{1, 2}, doubles));
  bundle.put("library_sizes_1", at::tensor(std::vector<double>{5}, doubles));
  bundle.put("library_sizes_2", at::tensor(std::vector<double>{1, 2, 5, 9}, doubles));  // all cells
  LibrarySizePools pools(1);
  read_library_sizes(bundle, pools);
  EXPECT_EQ(pools.sizes(), (std::vector<double>{1, 2, 5, 9}));
  EXPECT_EQ(pools.codes(), (std::vector<int>{0, 0, 1, -1}));
  TensorBundle round_trip;
  write_library_sizes(round_trip, pools);
  LibrarySizePools again(1);
  read_library_sizes(round_trip, again);
  EXPECT_EQ(again.sizes(), pools.sizes());
  EXPECT_EQ(again.codes(), pools.codes());
}

TEST(LibrarySizePools, MatchedDrawsTheSizesInTheOrderOfDetectedGenes) {
  // Level 0: sizes 100..1000 with 10..100 detected genes; level 1: one cell.
  LibrarySizePools pools(1);
  for (int k = 1; k <= 10; ++k) pools.add({0}, 100.0 * k, 10 * k);
  pools.add({1}, 7.0, 500);
  ASSERT_TRUE(pools.has_detected());
  std::mt19937_64 rng(3);

  // Ten cells of level 0, all detecting more genes than any training cell
  // (as blurred samples do), and one of level 1: by rank, the first level's
  // cells get the pool's ten sizes in their order, not the deepest ten times.
  const std::vector<std::vector<int>> codes = {{0}, {0}, {0}, {1}, {0}, {0}, {0}, {0}, {0}, {0}, {0}};
  const std::vector<int> detected = {1030, 1010, 1090, 3, 1020, 1100, 1040, 1060, 1050, 1080, 1070};
  const std::vector<double> sizes = pools.draw_all(codes, "matched", rng, detected);
  EXPECT_EQ(sizes, (std::vector<double>{300, 100, 900, 7, 200, 1000, 400, 600, 500, 800, 700}));

  // Twenty cells of one level: each pool cell's size twice, ties in any order.
  const std::vector<double> twice = pools.draw_all(std::vector<std::vector<int>>(20, {0}), "matched", rng,
                                                   std::vector<int>(20, 55));
  std::map<double, int> times;
  for (double size : twice) ++times[size];
  EXPECT_EQ(times.size(), 10u);
  for (const auto& [size, count] : times) EXPECT_EQ(count, 2) << "size " << size;

  // A cell alone: a draw from its pool.
  std::set<double> alone;
  for (int i = 0; i < 300; ++i) alone.insert(pools.draw({0}, "matched", rng, 52));
  EXPECT_EQ(alone.size(), 10u);

  EXPECT_THROW(pools.draw({0}, "matched", rng), std::invalid_argument) << "without the cell's detected genes";
  EXPECT_THROW(pools.draw_all(codes, "matched", rng, {1, 2}), std::invalid_argument) << "one detected count per cell";
  EXPECT_THROW(pools.draw({0}, "gamma", rng), std::invalid_argument);
  EXPECT_EQ(pools.resolve("default"), "matched");
  EXPECT_EQ(pools.resolve("lognormal"), "lognormal");
  EXPECT_THROW(pools.resolve("gamma"), std::invalid_argument);

  // One cell without its detected genes (an earlier file): "matched" is refused.
  LibrarySizePools old(1);
  old.add({0}, 100.0);
  EXPECT_FALSE(old.has_detected());
  EXPECT_EQ(old.resolve("default"), "empirical");
  EXPECT_THROW(old.draw({0}, "matched", rng, 3), std::invalid_argument);

  // The detected genes travel with the file; files without them read as unknown.
  TensorBundle bundle;
  write_library_sizes(bundle, pools);
  LibrarySizePools again(1);
  read_library_sizes(bundle, again);
  EXPECT_EQ(again.detected(), pools.detected());
  TensorBundle without;
  write_library_sizes(without, old);
  EXPECT_FALSE(without.has("library_size_detected"));
  LibrarySizePools read_old(1);
  read_library_sizes(without, read_old);
  EXPECT_FALSE(read_old.has_detected());
}

TEST(LibrarySizePools, DetectedGenesCountValuesAboveOneCountsLevel) {
  const std::vector<float> cell = {0.0f, 0.1f, 0.25f, 0.26f, 2.0f};
  EXPECT_EQ(detected_genes(cell.data(), 5), 2);
  // A count of 1 in a cell of 30,000 counts is detected.
  const float one_count = static_cast<float>(std::log1p(1e4 / 30000.0));
  EXPECT_EQ(detected_genes(&one_count, 1), 1);
}
