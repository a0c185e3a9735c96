// The count VAE (models/count_vae.hpp) and the LatentModel built on it
// (api/latent_model.hpp).
//
//   CountVaeRealData  the validation negative ELBO falls while a small "vae"
//                     trains on real PBMC counts (../shared/data; skipped
//                     when the folder is absent)
//   CountVae          the module on synthetic data: decoder heads per
//                     likelihood, dispersion per condition, the KL term
//                     against its closed form, the likelihood at the
//                     posterior mean against plain-double NB / Poisson
//                     log-pmfs, and setting errors that name the setting
//   LatentModel       reconstruct / generate / history through the
//                     GenerativeModel interface
//
// The registry test (test_compositions.cpp) already trains, generates,
// embeds and saves / loads every latent composition once; these tests check
// the values.
#include <gtest/gtest.h>

#include "error_message.hpp"
#include "two_programme_cells.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/latent_model.hpp"
#include "api/model_file.hpp"
#include "data/expression_source.hpp"
#include "exprflow/api.hpp"
#include "models/compositions.hpp"
#include "models/count_vae.hpp"

using namespace exprflow;

namespace {


bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ------------------------------------------------------------ real data ---

// The folder of the shared public datasets: $EXPRFLOW_SHARED_DATA (as the R
// tests' helper-shared-data.R), else ../shared/data seen from the repository
// root (where `make core-test` runs the binary), from a build folder
// (build/<name>, where ctest runs it) or from this source file. Empty when
// none holds `dataset`.
std::string shared_dataset(const std::string& dataset) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("EXPRFLOW_SHARED_DATA")) candidates.push_back(env);
  candidates.push_back("../shared/data");
  candidates.push_back("../../shared/data");
  candidates.push_back("../../../shared/data");
  const std::string here = __FILE__;  // .../src/core/tests/test_count_vae.cpp
  const std::string suffix = "src/core/tests/test_count_vae.cpp";
  if (here.size() >= suffix.size() && here.compare(here.size() - suffix.size(), suffix.size(), suffix) == 0) {
    candidates.push_back(here.substr(0, here.size() - suffix.size()) + "../shared/data");
  }
  for (const std::string& dir : candidates) {
    if (dir.empty()) continue;
    const std::string path = dir + "/" + dataset;
    if (std::ifstream(path + "/genes.tsv").good()) return path;
  }
  return "";
}

// Raw counts of the first `n_cells` cells of a 10x-style folder (genes.tsv and
// a genes x cells MatrixMarket matrix.mtx[.gz], entries in column order, as R's
// Matrix::writeMM writes a dgCMatrix), restricted to the `n_genes` genes with
// the largest total over those cells. Dense, genes x cells, column-major.
struct RealCounts {
  std::vector<std::string> genes;
  std::vector<double> counts;
  int n_cells = 0;
};

RealCounts read_top_genes(const std::string& folder, int n_cells, int n_genes) {
  std::vector<std::string> names;
  {
    std::ifstream in(folder + "/genes.tsv");
    for (std::string line; std::getline(in, line);) names.push_back(line.substr(0, line.find('\t')));
  }
  FILE* file = nullptr;
  bool piped = false;
  if (std::ifstream(folder + "/matrix.mtx").good()) {
    file = std::fopen((folder + "/matrix.mtx").c_str(), "r");
  } else {
    file = popen(("gzip -dc '" + folder + "/matrix.mtx.gz'").c_str(), "r");
    piped = true;
  }
  if (!file) throw std::runtime_error("cannot open the matrix of " + folder);
  char line[512];
  do {  // header and comments
    if (!std::fgets(line, sizeof line, file)) throw std::runtime_error("empty matrix in " + folder);
  } while (line[0] == '%');
  long rows = 0, cols = 0, entries = 0;
  if (std::sscanf(line, "%ld %ld %ld", &rows, &cols, &entries) != 3 || rows != static_cast<long>(names.size())) {
    throw std::runtime_error("unexpected MatrixMarket size line in " + folder + ": " + line);
  }
  std::vector<double> all(static_cast<size_t>(rows) * n_cells, 0.0);  // genes x cells
  long r = 0, c = 0;
  double v = 0;
  while (std::fscanf(file, "%ld %ld %lf", &r, &c, &v) == 3) {
    if (c > n_cells) break;  // column order: the cells we want are read
    all[static_cast<size_t>(c - 1) * rows + (r - 1)] = v;
  }
  if (piped) pclose(file); else std::fclose(file);

  std::vector<double> total(rows, 0.0);
  for (int cell = 0; cell < n_cells; ++cell)
    for (long g = 0; g < rows; ++g) total[g] += all[static_cast<size_t>(cell) * rows + g];
  std::vector<long> order(rows);
  std::iota(order.begin(), order.end(), 0L);
  std::stable_sort(order.begin(), order.end(), [&](long a, long b) { return total[a] > total[b]; });
  order.resize(n_genes);

  RealCounts out;
  out.n_cells = n_cells;
  for (long g : order) out.genes.push_back(names[g]);
  out.counts.resize(static_cast<size_t>(n_genes) * n_cells);
  for (int cell = 0; cell < n_cells; ++cell)
    for (int k = 0; k < n_genes; ++k)
      out.counts[static_cast<size_t>(cell) * n_genes + k] = all[static_cast<size_t>(cell) * rows + order[k]];
  return out;
}

// ------------------------------------------------------- synthetic data ---

constexpr int64_t kGenes = 10;

// Counts (B, G) with library sizes spread over a decade, their library sizes
// (B,) and log1p-normalised expression (B, G), as the model's data path
// makes them.
struct Cells {
  Tensor counts, library, log_expression;
};

Cells synthetic_cells(int64_t B, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  Tensor share = at::softmax(at::normal(0.0, 1.0, {1, kGenes}, g), 1);                     // (1, G)
  Tensor size = at::linspace(50.0, 500.0, B).unsqueeze(1);                                  // (B, 1)
  Tensor counts = at::poisson(share * size, g).to(at::kFloat);                              // (B, G)
  counts.select(1, 0).add_(1.0);                                                            // no empty cell
  Tensor library = counts.sum(1);                                                           // (B,)
  Tensor log_expression = at::log1p(counts / library.unsqueeze(1) * kNormalisationTarget);  // (B, G)
  return {counts, library, log_expression};
}

// A count VAE with small settings over `overrides`, without dropout, in eval mode.
CountVae small_vae(const Options& overrides, std::vector<CovariateSpec> covariates = {}) {
  at::manual_seed(11);
  Options spec = CountVaeSettings::defaults();
  spec.set("latent_dim", 3).set("vae_hidden", 8).set("vae_layers", 2).set("vae_dropout", 0.0);
  spec = spec.merged(overrides, /*known_only=*/true);
  CountVae vae(kGenes, std::move(covariates), CountVaeSettings::from(spec));
  vae->eval();
  return vae;
}

// By value: named_parameters() returns a temporary dictionary, so a
// reference into it would dangle (AddressSanitizer caught one); the handle
// shares the parameter's storage, so in-place updates still reach it.
Tensor parameter(torch::nn::Module& m, const std::string& name) {
  for (const auto& p : m.named_parameters()) {
    if (p.key() == name) return p.value();
  }
  throw std::runtime_error("no parameter '" + name + "'");
}

bool has_parameter(torch::nn::Module& m, const std::string& name) {
  for (const auto& p : m.named_parameters()) {
    if (p.key() == name) return true;
  }
  return false;
}

// Makes the encoder output the posterior N(mean, var) for every cell whatever
// its input: the last layer's weight zero, its bias the means and the log
// variances. (The module adds a small floor to var: 1e-4 at the time of
// writing, so var = exp(bias) + floor.)
void fix_posterior(CountVaeImpl& vae, const std::vector<float>& mean, const std::vector<float>& log_var) {
  torch::NoGradGuard no_grad;
  parameter(vae, "encoder_out.weight").zero_();
  std::vector<float> bias = mean;
  bias.insert(bias.end(), log_var.begin(), log_var.end());
  parameter(vae, "encoder_out.bias").copy_(at::tensor(bias));
}

double ref_nb(double x, double mu, double theta) {
  return std::lgamma(x + theta) - std::lgamma(theta) - std::lgamma(x + 1) + theta * std::log(theta / (theta + mu)) +
         x * std::log(mu / (theta + mu));
}

double ref_poisson(double x, double mu) { return x * std::log(mu) - mu - std::lgamma(x + 1); }

// ------------------------------------------------------- latent models ---

constexpr int kCells = 80, kModelGenes = 12;

// Two conditions with opposite gene programmes; library sizes from ~40 to
// ~500 so a library size that is not the cell's own shows.
using SmallData = TwoProgrammeCells;

const SmallData& small_data() {
  static const SmallData d = [] {
    TwoProgrammeSettings s;
    s.n_genes = kModelGenes;
    s.n_cells = kCells;
    s.seed = 17;
    s.high = 15.0;
    s.first_scale = 0.5;
    s.last_scale = 5.0;
    s.offset = 1;
    return two_programme_cells(s);
  }();
  return d;
}

Options tiny_spec(const std::string& architecture) {
  Options o = Options().set("architecture", architecture).set("seed", 3).set("latent_dim", 4)
                  .set("vae_hidden", 16).set("vae_layers", 1);
  if (architecture != "vae") o.set("hidden", 16).set("n_layers", 1);
  return o;
}

// `epochs` of the plain stage; two-stage models also get `vae_epochs` of the VAE stage.
Options training(int epochs, int vae_epochs = 0) {
  Options o = Options().set("epochs", epochs).set("batch_size", 16).set("learning_rate", 1e-3)
                  .set("validation_fraction", 0.2).set("seed", 4);
  if (vae_epochs > 0) o.set("vae_epochs", vae_epochs).set("vae_batch_size", 16).set("vae_learning_rate", 1e-3);
  return o;
}

// A "vae" trained for a few epochs on small_data(), shared by the tests below.
GenerativeModel& trained_vae() {
  static std::unique_ptr<GenerativeModel> model = [] {
    const SmallData& d = small_data();
    auto m = GenerativeModel::create(tiny_spec("vae"), d.source->genes(), {"A", "B"});
    m->train(*d.source, d.conditions, training(5), {});
    return m;
  }();
  return *model;
}

// Mean log expression of the first programme half of the genes minus the
// second's, over the cells labelled `label`.
double programme_gap(const std::vector<float>& logcounts, const std::vector<int>& labels, int label) {
  double first = 0, second = 0;
  int n = 0;
  for (int i = 0; i < kCells; ++i) {
    if (labels[i] != label) continue;
    ++n;
    for (int g = 0; g < kModelGenes; ++g) {
      (g < kModelGenes / 2 ? first : second) += logcounts[static_cast<size_t>(i) * kModelGenes + g];
    }
  }
  return (first - second) / n;
}

// Cells of small_data() moved to `other`: per target condition, their
// programme gap is at least `fraction` of the real cells' of that condition.
void expect_cells_take_the_other_programme(const GeneratedCells& moved, const std::vector<int>& other,
                                           double fraction) {
  const SmallData& d = small_data();
  std::vector<float> observed(static_cast<size_t>(kCells) * kModelGenes);
  d.source->fill_log_normalised(cell_range(0, kCells), observed.data());
  for (int c : {0, 1}) {
    const double real = programme_gap(observed, d.conditions, c), got = programme_gap(moved.logcounts, other, c);
    EXPECT_GT(got / real, fraction) << "cells moved to " << c << ": programme gap " << got << ", real " << real;
  }
}

}  // namespace

// =================================================================== real data

// The first 300 PBMC3k cells x their 200 most expressed genes: a small "vae"
// (latent_dim 4, one hidden layer of 32) trained for 20 epochs must lower the
// held-out negative ELBO (full KL weight, fixed draws: comparable across
// epochs) well below its first epoch's, and not lose it again. Measured when
// written (LibTorch CPU): 555.8 nats per held-out cell after epoch 1, 486.7
// after epoch 20 (-12.4%; the best epoch 486.7); the bar asks for -7%. The
// first epoch has trained already (8 steps), hence the modest ratio.
TEST(CountVaeRealData, ValidationElboFallsOnPbmc3k) {
  const std::string folder = shared_dataset("scrna_pbmc3k_seurat");
  if (folder.empty()) {
    GTEST_SKIP() << "shared data folder scrna_pbmc3k_seurat not found (set EXPRFLOW_SHARED_DATA to the "
                    "folder holding it, or run from the repository root with ../shared/data beside it)";
  }
  const RealCounts real = read_top_genes(folder, 300, 200);
  ASSERT_EQ(real.genes.size(), 200u);
  DenseExpressionSource source(real.genes, real.n_cells, real.counts.data());
  for (double size : source.library_sizes()) ASSERT_GT(size, 0);

  Options spec = Options().set("architecture", "vae").set("latent_dim", 4).set("vae_hidden", 32)
                     .set("vae_layers", 1).set("seed", 2);
  auto model = GenerativeModel::create(spec, source.genes(), {});
  std::vector<double> validation;
  std::vector<std::string> stages;
  TrainCallbacks callbacks;
  callbacks.on_epoch = [&validation](const EpochRecord& r) { validation.push_back(r.validation_loss); };
  callbacks.on_stage = [&stages](const std::string& s) { stages.push_back(s); };
  const Options options = Options().set("epochs", 20).set("batch_size", 32).set("learning_rate", 1e-2)
                              .set("validation_fraction", 0.2).set("seed", 5);
  const TrainReport report = model->train(source, {}, options, callbacks);

  EXPECT_EQ(stages, std::vector<std::string>{"vae"});
  ASSERT_EQ(validation.size(), 20u) << "stopped early?";
  for (double v : validation) ASSERT_TRUE(std::isfinite(v) && v > 0);
  const double first = validation.front(), last = validation.back();
  const double best = *std::min_element(validation.begin(), validation.end());
  EXPECT_LT(last, 0.93 * first) << "negative ELBO per held-out cell: first epoch " << first << ", last " << last;
  EXPECT_LT(last, best + 2.0) << "the held-out ELBO got worse late in training: best " << best << ", last " << last;
  EXPECT_EQ(report.history.size(), 20u);
  ASSERT_EQ(model->history().size(), 20u);
  EXPECT_EQ(model->history().front().stage, "vae");
  EXPECT_EQ(model->history().back().validation_loss, validation.back());
}

// ============================================================ CountVae, synthetic

TEST(CountVae, DecodedRatesAreRowsSummingToOne) {
  CountVae vae = small_vae(Options());
  at::Generator g = at::detail::createCPUGenerator(1);
  Tensor z = at::normal(0.0, 2.0, {5, 3}, g);
  const LikelihoodParams p = vae->decode(z, {});
  ASSERT_EQ(p.rate.sizes(), (std::vector<int64_t>{5, kGenes}));
  EXPECT_GT(p.rate.min().item<float>(), 0.0f);
  EXPECT_TRUE(at::allclose(p.rate.sum(1), at::ones({5}), 1e-5, 1e-6)) << p.rate.sum(1);
  // Different codes decode to different compositions (the rate depends on z).
  EXPECT_GT((p.rate[0] - p.rate[1]).abs().max().item<float>(), 1e-6f);
  // NB: one inverse dispersion per gene, no zero inflation.
  ASSERT_TRUE(p.log_theta.defined());
  EXPECT_EQ(p.log_theta.sizes(), (std::vector<int64_t>{kGenes}));
  EXPECT_FALSE(p.zero_logits.defined());
  EXPECT_EQ(vae->likelihood().name(), "nb");
}

TEST(CountVae, LikelihoodChoosesTheHeads) {
  Tensor z = at::zeros({4, 3});
  {
    CountVae zinb = small_vae(Options().set("likelihood", "zinb"));
    const LikelihoodParams p = zinb->decode(z, {});
    ASSERT_TRUE(p.zero_logits.defined());
    EXPECT_EQ(p.zero_logits.sizes(), (std::vector<int64_t>{4, kGenes}));
    ASSERT_TRUE(p.log_theta.defined());
    EXPECT_EQ(zinb->likelihood().name(), "zinb");
    EXPECT_TRUE(at::allclose(p.rate.sum(1), at::ones({4}), 1e-5, 1e-6));
  }
  {
    CountVae poisson = small_vae(Options().set("likelihood", "poisson"));
    const LikelihoodParams p = poisson->decode(z, {});
    EXPECT_FALSE(p.log_theta.defined());
    EXPECT_FALSE(p.zero_logits.defined());
    EXPECT_FALSE(has_parameter(*poisson, "log_theta")) << "a Poisson VAE has no dispersion to train";
    EXPECT_EQ(poisson->likelihood().name(), "poisson");
  }
  CountVae nb = small_vae(Options());
  EXPECT_TRUE(has_parameter(*nb, "log_theta"));
  EXPECT_FALSE(has_parameter(*nb, "zero_out.weight"));
}

// dispersion "gene_condition": a (levels + 1, G) table of log theta, one row
// per level and the last for the null code -1, picked per cell.
TEST(CountVae, DispersionPerConditionPicksTheCellsRow) {
  CountVae vae = small_vae(Options().set("dispersion", "gene_condition"), {{"condition", 2}});
  Tensor table = parameter(*vae, "log_theta");
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{3, kGenes}));
  // The parameter is log theta / kDispersionStep (see count_vae.hpp).
  const double step = CountVaeImpl::kDispersionStep;
  {
    torch::NoGradGuard no_grad;
    table[0].fill_(0.5 / step);
    table[1].copy_(at::linspace(-1.0, 1.0, kGenes) / step);
    table[2].fill_(2.0 / step);
  }
  Tensor z = at::zeros({4, 3});
  Covariates c = {{"condition", at::tensor(std::vector<int64_t>{0, 1, -1, 0})}};
  const LikelihoodParams p = vae->decode(z, c);
  ASSERT_EQ(p.log_theta.sizes(), (std::vector<int64_t>{4, kGenes}));
  EXPECT_TRUE(at::allclose(p.log_theta[0], at::full({kGenes}, 0.5f)));
  EXPECT_TRUE(at::allclose(p.log_theta[1], at::linspace(-1.0, 1.0, kGenes)));
  EXPECT_TRUE(at::allclose(p.log_theta[2], at::full({kGenes}, 2.0f))) << "null code -1 uses the last row";
  EXPECT_TRUE(at::equal(p.log_theta[3], p.log_theta[0]));
  EXPECT_FALSE(at::equal(p.log_theta[0], p.log_theta[1])) << "conditions share a dispersion";
  // Without the covariate every cell is null.
  const LikelihoodParams none = vae->decode(z, {});
  EXPECT_TRUE(at::allclose(none.log_theta, at::full({4, kGenes}, 2.0f)));
  // The per-cell dispersion reaches the likelihood: the same counts and rate
  // score differently under the two conditions.
  Cells cells = synthetic_cells(4, 3);
  Tensor ll = vae->likelihood().log_prob(p, cells.counts, cells.library).sum(1);
  LikelihoodParams swapped = p;
  swapped.log_theta = p.log_theta.index_select(0, at::tensor(std::vector<int64_t>{1, 0, 2, 1}));
  Tensor ll_swapped = vae->likelihood().log_prob(swapped, cells.counts, cells.library).sum(1);
  EXPECT_GT((ll - ll_swapped).abs()[0].item<float>(), 1e-3f);

  // It needs a condition.
  const std::string msg = error_of([] { small_vae(Options().set("dispersion", "gene_condition")); });
  EXPECT_TRUE(contains(msg, "dispersion")) << msg;
}

TEST(CountVae, KlIsZeroAtThePriorAndMatchesTheClosedForm) {
  CountVae vae = small_vae(Options());
  Cells cells = synthetic_cells(3, 5);
  at::Generator g = at::detail::createCPUGenerator(7);
  // Encoder outputs N(0, I) (log var 0: var = 1 + the floor, whose KL is
  // floor^2 / 4 per dimension, far below the tolerance).
  fix_posterior(*vae, {0, 0, 0}, {0, 0, 0});
  const Posterior prior = vae->encode(cells.log_expression, {});
  EXPECT_TRUE(at::equal(prior.mean, at::zeros({3, 3})));
  EXPECT_TRUE(at::allclose(prior.var, at::ones({3, 3}), 1e-3, 0));
  ElboTerms terms = vae->elbo(cells.log_expression, cells.counts, cells.library, {}, g);
  ASSERT_EQ(terms.kl.sizes(), (std::vector<int64_t>{3}));
  EXPECT_LT(terms.kl.abs().max().item<float>(), 1e-6f) << terms.kl;
  ASSERT_EQ(terms.reconstruction.sizes(), (std::vector<int64_t>{3}));
  EXPECT_GT(terms.reconstruction.min().item<float>(), 0.0f) << "-log p of counts is positive";

  // A known posterior: mean m, variance v per dimension.
  const std::vector<double> m = {0.5, -1.25, 2.0}, v = {0.25, 1.0, 2.5};
  fix_posterior(*vae, {0.5f, -1.25f, 2.0f},
                {static_cast<float>(std::log(0.25)), 0.0f, static_cast<float>(std::log(2.5))});
  double expected = 0;
  for (size_t k = 0; k < m.size(); ++k) expected += 0.5 * (v[k] + m[k] * m[k] - 1 - std::log(v[k]));
  terms = vae->elbo(cells.log_expression, cells.counts, cells.library, {}, g);
  for (int64_t b = 0; b < 3; ++b) {
    // The variance floor moves KL by at most 0.5 |1 - 1/v| * floor per dimension.
    EXPECT_NEAR(terms.kl[b].item<double>(), expected, 1e-3) << "cell " << b;
  }
  EXPECT_GT(expected, 1.0);  // far from the prior: the check above is not the zero case again
}

// The likelihood at the posterior mean: decode(encode(x).mean), scored per
// gene and summed, against the NB (and Poisson) log-pmf in plain double with
// mu = rate * library and theta = exp(log theta).
TEST(CountVae, LogLikelihoodAtMeanIsTheDecodedMeansLikelihood) {
  Cells cells = synthetic_cells(6, 9);
  for (const std::string likelihood : {"nb", "poisson"}) {
    CountVae vae = small_vae(Options().set("likelihood", likelihood));
    if (likelihood == "nb") {
      torch::NoGradGuard no_grad;
      parameter(*vae, "log_theta").copy_(at::linspace(-1.5, 2.5, kGenes));  // theta 0.2 .. 12
    }
    torch::NoGradGuard no_grad;
    const Tensor ll = vae->log_likelihood_at_mean(cells.log_expression, cells.counts, cells.library, {});
    ASSERT_EQ(ll.sizes(), (std::vector<int64_t>{6}));

    const LikelihoodParams p = vae->decode(vae->encode(cells.log_expression, {}).mean, {});
    const Tensor direct = vae->likelihood().log_prob(p, cells.counts, cells.library).sum(1);
    EXPECT_TRUE(at::allclose(ll, direct, 1e-6, 1e-4)) << likelihood << "\n" << ll << "\n" << direct;

    Tensor rate = p.rate.to(at::kDouble), counts = cells.counts.to(at::kDouble), library = cells.library.to(at::kDouble);
    Tensor log_theta = likelihood == "nb" ? p.log_theta.to(at::kDouble) : Tensor();
    for (int64_t b = 0; b < 6; ++b) {
      double reference = 0;
      for (int64_t g = 0; g < kGenes; ++g) {
        const double x = counts[b][g].item<double>(), mu = rate[b][g].item<double>() * library[b].item<double>();
        reference += likelihood == "nb" ? ref_nb(x, mu, std::exp(log_theta[g].item<double>())) : ref_poisson(x, mu);
      }
      EXPECT_NEAR(ll[b].item<double>(), reference, 1e-4 * std::abs(reference) + 1e-3) << likelihood << " cell " << b;
    }
  }
}

// The marginal likelihood log p(x) = log of the integral of p(x | z) N(z; 0, 1)
// over z: with a one-dimensional code the integral is a sum over a fine grid,
// which the importance-sampled estimate must approach. The posterior is fixed
// off the prior (mean 0.3, variance 1.5), so the importance weights matter.
TEST(CountVae, MarginalLogLikelihoodMatchesQuadratureOverTheCode) {
  Cells cells = synthetic_cells(4, 21);
  CountVae vae = small_vae(Options().set("latent_dim", 1));
  torch::NoGradGuard no_grad;
  parameter(*vae, "log_theta").copy_(at::linspace(-1.0, 2.0, kGenes));
  fix_posterior(*vae, {0.3f}, {static_cast<float>(std::log(1.5))});
  at::Generator g = at::detail::createCPUGenerator(5);
  const Posterior q = vae->encode(cells.log_expression, {});
  const Tensor estimate = vae->marginal_log_likelihood(q, cells.counts, cells.library, {}, 20000, g);
  ASSERT_EQ(estimate.sizes(), (std::vector<int64_t>{4}));

  const int64_t points = 8001;
  const double step = 16.0 / (points - 1);
  const Tensor grid = at::linspace(-8.0, 8.0, points).unsqueeze(1);  // (P, 1)
  const LikelihoodParams p = vae->decode(grid, {});                  // rate (P, G)
  for (int64_t b = 0; b < 4; ++b) {
    const Tensor counts = cells.counts[b].unsqueeze(0).expand({points, kGenes});  // (P, G)
    const Tensor library = cells.library[b].expand({points});                    // (P,)
    const Tensor log_px = vae->likelihood().log_prob(p, counts, library).sum(1).to(at::kDouble);  // (P,)
    const Tensor log_pz = -0.5 * (grid.squeeze(1).to(at::kDouble).pow(2) + std::log(2 * 3.141592653589793));
    const double exact = at::logsumexp(log_px + log_pz, 0).item<double>() + std::log(step);
    EXPECT_NEAR(estimate[b].item<double>(), exact, 0.02) << "cell " << b;
  }
  g = at::detail::createCPUGenerator(5);
  const Tensor again = vae->marginal_log_likelihood(q, cells.counts, cells.library, {}, 20000, g);
  EXPECT_TRUE(at::equal(again, estimate)) << "same generator seed, same estimate";
  EXPECT_THROW(vae->marginal_log_likelihood(q, cells.counts, cells.library, {}, 0, g),
               std::invalid_argument);
}

TEST(CountVae, SettingErrorsNameTheSetting) {
  auto error_for = [](const Options& change) {
    return error_of([&] { CountVaeSettings::from(CountVaeSettings::defaults().merged(change, true)); });
  };
  std::string msg = error_for(Options().set("likelihood", "gauss"));
  EXPECT_TRUE(contains(msg, "'likelihood'") && contains(msg, "gauss")) << msg;
  msg = error_for(Options().set("dispersion", "cell"));
  EXPECT_TRUE(contains(msg, "'dispersion'") && contains(msg, "cell")) << msg;
  msg = error_for(Options().set("vae_dropout", 1.5));
  EXPECT_TRUE(contains(msg, "'vae_dropout'")) << msg;
  msg = error_for(Options().set("latent_dim", 0));
  EXPECT_TRUE(contains(msg, "latent_dim")) << msg;
  // The same through the model factory, and a valid change is accepted.
  msg = error_of([] {
    GenerativeModel::create(Options().set("architecture", "vae").set("likelihood", "gauss"), {"a", "b"}, {});
  });
  EXPECT_TRUE(contains(msg, "'likelihood'")) << msg;
  EXPECT_EQ(error_for(Options().set("likelihood", "zinb").set("vae_dropout", 0.5)), "<no exception>");
}

// ======================================================== LatentModel (api)

// reconstruct(): the decoder at the posterior mean times each cell's OWN
// library size, so expected counts add up to it, cell by cell.
TEST(LatentModel, ReconstructKeepsEachCellsLibrarySize) {
  const SmallData& d = small_data();
  GenerativeModel& model = trained_vae();
  const ReconstructedCells rec = model.reconstruct(*d.source, d.conditions, Options());
  ASSERT_EQ(rec.n_cells, kCells);
  ASSERT_EQ(rec.n_genes, kModelGenes);
  ASSERT_EQ(rec.expected_counts.size(), static_cast<size_t>(kCells) * kModelGenes);
  ASSERT_EQ(rec.log_likelihood.size(), static_cast<size_t>(kCells));
  for (int c = 0; c < kCells; ++c) {
    double sum = 0;
    for (int g = 0; g < kModelGenes; ++g) {
      const double mu = rec.expected_counts[static_cast<size_t>(c) * kModelGenes + g];
      ASSERT_TRUE(std::isfinite(mu) && mu > 0) << "cell " << c << " gene " << g;
      sum += mu;
    }
    const double library = d.source->library_sizes()[c];
    EXPECT_NEAR(sum, library, 1e-4 * library) << "cell " << c;
    EXPECT_TRUE(std::isfinite(rec.log_likelihood[c]) && rec.log_likelihood[c] < 0) << rec.log_likelihood[c];
  }
  for (float v : rec.logcounts) ASSERT_TRUE(std::isfinite(v) && v >= 0);
  // Deterministic: the posterior mean, no draws.
  EXPECT_EQ(model.reconstruct(*d.source, d.conditions, Options().set("seed", 9)).expected_counts,
            rec.expected_counts);
}

// decode(): the codes embed() gives decode to what reconstruct() gives (the
// decoder at the posterior mean); moving a code moves the expression; a
// gene-space model has no code to decode.
TEST(LatentModel, DecodeOfEmbeddedCodesIsTheReconstruction) {
  const SmallData& d = small_data();
  GenerativeModel& model = trained_vae();
  int dims = 0;
  std::vector<float> codes = model.embed(*d.source, &dims);
  const ReconstructedCells rec = model.reconstruct(*d.source, d.conditions, Options());
  const std::vector<float> decoded = model.decode(codes, dims, d.conditions, Options().set("batch_size", 7.0));
  ASSERT_EQ(decoded.size(), rec.logcounts.size());
  for (size_t i = 0; i < decoded.size(); ++i) ASSERT_NEAR(decoded[i], rec.logcounts[i], 1e-4) << i;
  for (int k = 0; k < dims; ++k) codes[k] += 3.0f;  // the first cell's code moved
  // In batches of 7 as `decoded` was: the other cells' products then run in
  // the same blocks, so they match bit for bit (other batch sizes may differ
  // in the last bit, as they did on one CPU).
  const std::vector<float> moved = model.decode(codes, dims, d.conditions, Options().set("batch_size", 7.0));
  double change = 0;
  for (int g = 0; g < kModelGenes; ++g) change += std::abs(moved[g] - decoded[g]);
  EXPECT_GT(change, 1e-2);
  for (size_t i = kModelGenes; i < moved.size(); ++i) ASSERT_EQ(moved[i], decoded[i]) << i;
  EXPECT_TRUE(contains(error_of([&] { model.decode(codes, dims + 1, d.conditions, Options()); }), "dimensions"));
  const auto gene_space = GenerativeModel::create(Options().set("architecture", "state_mlp"), {"a", "b"}, {});
  const std::string msg = error_of([&] { gene_space->decode({0.f}, 1, {}, Options()); });
  EXPECT_TRUE(contains(msg, "no latent code")) << msg;
}

TEST(LatentModel, GenerateDrawsCountsWithADrawnLibrarySize) {
  const SmallData& d = small_data();
  GenerativeModel& model = trained_vae();
  std::vector<int> conditions;
  for (int i = 0; i < 120; ++i) conditions.push_back(i % 3 == 2 ? -1 : i % 3);  // 0, 1, -1, ...
  std::set<double> all_sizes(d.source->library_sizes().begin(), d.source->library_sizes().end());
  std::map<int, std::set<double>> level_sizes;
  for (int c = 0; c < kCells; ++c) level_sizes[d.conditions[c]].insert(d.source->library_sizes()[c]);

  for (const std::string method : {"empirical", "lognormal"}) {
    const GeneratedCells cells = model.generate(conditions, Options().set("library_size", method).set("seed", 3));
    ASSERT_EQ(cells.n_cells, 120);
    ASSERT_EQ(cells.counts.size(), static_cast<size_t>(120) * kModelGenes);
    ASSERT_EQ(cells.library_size.size(), 120u);
    for (int v : cells.counts) ASSERT_GE(v, 0) << method;
    for (float v : cells.logcounts) ASSERT_TRUE(std::isfinite(v) && v >= 0) << method;
    double ratio = 0;
    int not_observed = 0;
    for (int i = 0; i < 120; ++i) {
      const double size = cells.library_size[i];
      ASSERT_TRUE(std::isfinite(size) && size > 0) << method;
      if (method == "empirical") {
        // A training cell's size, of the cell's own level (-1: any level).
        const std::set<double>& pool = conditions[i] < 0 ? all_sizes : level_sizes[conditions[i]];
        EXPECT_TRUE(pool.count(size)) << "cell " << i << " (level " << conditions[i] << ") drew " << size;
      }
      not_observed += all_sizes.count(size) == 0;
      long total = 0;
      for (int g = 0; g < kModelGenes; ++g) total += cells.counts[static_cast<size_t>(i) * kModelGenes + g];
      ratio += total / size;
    }
    if (method == "lognormal") EXPECT_GT(not_observed, 100) << "lognormal sizes should be fresh draws";
    // Counts are drawn around rate * library: their totals follow the drawn sizes.
    EXPECT_NEAR(ratio / 120, 1.0, 0.25) << method;
  }
  // The same seed gives the same cells.
  const Options o = Options().set("seed", 4);
  EXPECT_EQ(model.generate(conditions, o).counts, model.generate(conditions, o).counts);
  const std::string msg = error_of([&] { model.generate(conditions, Options().set("library_size", "gamma")); });
  EXPECT_TRUE(contains(msg, "library_size")) << msg;
}

// Transfer through the latent flow: each cell's code inverted under its own
// condition and sampled under the other, decoded with the cell's library
// size: the moved cells carry the other condition's programme. Counts keep
// each cell's noise (the default), which keeps whatever the VAE does not
// explain: after 40 VAE epochs at 1e-3 the moved cells took 0.10 / 0.13 of
// the real gap between the two programmes (drawn counts: over 0.4); after
// 150 at 3e-3, over 0.99.
TEST(LatentModel, TransferMovesCodesToTheOtherConditionWithTheCellsLibrarySize) {
  const SmallData& d = small_data();
  auto model = GenerativeModel::create(tiny_spec("latent_mlp"), d.source->genes(), {"A", "B"});
  model->train(*d.source, d.conditions,
               training(300, 150).set("learning_rate", 3e-3).set("vae_learning_rate", 3e-3), {});
  std::vector<int> other(d.conditions.size());
  for (size_t i = 0; i < other.size(); ++i) other[i] = 1 - d.conditions[i];
  const GeneratedCells moved = model->transfer(*d.source, d.conditions, other, Options().set("seed", 2));
  ASSERT_EQ(moved.n_cells, kCells);
  expect_cells_take_the_other_programme(moved, other, 0.4);
  for (int i = 0; i < kCells; ++i) ASSERT_EQ(moved.library_size[i], d.source->library_sizes()[i]);
  // The VAE alone decodes each code under the target condition.
  const GeneratedCells decoded = trained_vae().transfer(*d.source, d.conditions, other, Options().set("seed", 2));
  EXPECT_EQ(decoded.n_cells, kCells);
  EXPECT_EQ(decoded.counts, trained_vae().transfer(*d.source, d.conditions, other, Options().set("seed", 2)).counts);
}

// transfer_noise "cell": each observed count carried to its quantile under
// the moved code's law (decode/count_quantiles.hpp). Moved to its own
// condition a cell is returned exactly; moved to the other by the latent
// shift it takes the other programme.
TEST(LatentModel, TransferKeepingTheCellsNoiseReturnsUnmovedCellsExactly) {
  const SmallData& d = small_data();
  auto model = GenerativeModel::create(tiny_spec("vae"), d.source->genes(), {"A", "B"});
  model->train(*d.source, d.conditions, training(60).set("learning_rate", 3e-3), {});
  const Options keep = Options().set("transfer", "shift").set("transfer_noise", "cell").set("seed", 2);
  const GeneratedCells same = model->transfer(*d.source, d.conditions, d.conditions, keep);
  std::vector<float> observed(static_cast<size_t>(kCells) * kModelGenes);
  d.source->fill_counts(cell_range(0, kCells), observed.data());
  for (size_t i = 0; i < observed.size(); ++i) ASSERT_EQ(same.counts[i], static_cast<int>(observed[i])) << i;

  std::vector<int> other(d.conditions.size());
  for (size_t i = 0; i < other.size(); ++i) other[i] = 1 - d.conditions[i];
  const GeneratedCells kept = model->transfer(*d.source, d.conditions, other, keep);
  expect_cells_take_the_other_programme(kept, other, 0.4);
  EXPECT_EQ(kept.counts, model->transfer(*d.source, d.conditions, other, keep).counts);  // same seed, same cells
  const std::string msg = error_of([&] {
    model->transfer(*d.source, d.conditions, other, Options().set("transfer", "shift").set("transfer_noise", "new"));
  });
  EXPECT_TRUE(contains(msg, "transfer_noise")) << msg;
}

TEST(LatentModel, VaeSamplesItsPriorAndHasNoGeneTokens) {
  const SmallData& d = small_data();
  GenerativeModel& model = trained_vae();
  EXPECT_EQ(model.default_sampler(), "prior");
  ASSERT_NE(dynamic_cast<LatentModel*>(&model), nullptr);
  EXPECT_FALSE(dynamic_cast<LatentModel&>(model).has_latent_model());
  int n = 0;
  EXPECT_THROW(model.token_activations(*d.source, &n), std::invalid_argument);
  EXPECT_THROW(model.token_gene_loadings("weights", nullptr, &n), std::invalid_argument);
  // A two-stage model samples its flow with the objective's sampler.
  auto flow = GenerativeModel::create(tiny_spec("latent_mlp"), d.source->genes(), {"A", "B"});
  EXPECT_EQ(flow->default_sampler(), "euler");
  EXPECT_TRUE(dynamic_cast<LatentModel&>(*flow).has_latent_model());
}

// History of a two-stage model: "vae" epochs, then "latent" epochs, each
// stage numbered from 1; a second train() call numbers on per stage.
TEST(LatentModel, TwoStageHistoryNumbersEpochsPerStage) {
  const SmallData& d = small_data();
  auto model = GenerativeModel::create(tiny_spec("latent_mlp"), d.source->genes(), {"A", "B"});
  std::vector<std::string> stages;
  TrainCallbacks callbacks;
  callbacks.on_stage = [&stages](const std::string& s) { stages.push_back(s); };
  model->train(*d.source, d.conditions, training(2, 3), callbacks);
  EXPECT_EQ(stages, (std::vector<std::string>{"vae", "latent"}));
  auto summary = [&model] {
    std::vector<std::string> out;
    for (const EpochRecord& r : model->history()) out.push_back(r.stage + std::to_string(r.epoch));
    return out;
  };
  EXPECT_EQ(summary(), (std::vector<std::string>{"vae1", "vae2", "vae3", "latent1", "latent2"}));
  for (const EpochRecord& r : model->history()) EXPECT_TRUE(std::isfinite(r.validation_loss)) << r.stage;
  EXPECT_TRUE(model->trained());

  model->train(*d.source, d.conditions, training(1, 2), callbacks);
  EXPECT_EQ(summary(), (std::vector<std::string>{"vae1", "vae2", "vae3", "latent1", "latent2", "vae4", "vae5",
                                                 "latent3"}));
  EXPECT_EQ(stages, (std::vector<std::string>{"vae", "latent", "vae", "latent"}));
}

// As for the gene-space models (Training.PatienceDefaultsToTheObjectives):
// with a learning rate too small to move float32 weights the latent stage's
// validation loss never improves, so patience p ends it after 1 + p epochs.
// Unless the caller sets `patience`, the latent stage should use the
// objective's default (none for flow, 10 for DDPM), as latent_model.cpp's
// train_latent() intends. Fails at the time of writing (flow stops after 11
// epochs): train() merges the training defaults, whose patience is 10, before
// train_latent() asks whether patience was given.
TEST(LatentModel, LatentStagePatienceDefaultsToTheObjectives) {
  const SmallData& d = small_data();
  auto latent_epochs = [&](const std::string& objective, double patience) {
    Options spec = tiny_spec("latent_mlp");
    spec.set("objective", objective);
    auto model = GenerativeModel::create(spec, d.source->genes(), {"A", "B"});
    Options o = training(13, 1);
    o.set("learning_rate", 1e-20);
    if (patience >= 0) o.set("patience", patience);
    const TrainReport r = model->train(*d.source, d.conditions, o, {});
    int n = 0;
    for (const EpochRecord& e : r.history) n += e.stage == "latent";
    return n;
  };
  EXPECT_EQ(latent_epochs("flow", -1), 13) << "flow: no early stopping by default";
  EXPECT_EQ(latent_epochs("ddpm", -1), 11) << "DDPM: patience 10 by default";
  EXPECT_EQ(latent_epochs("flow", 2), 3) << "an explicit patience wins";
}

// vae_input = "pca" (the default): training fits the encoder's projection on
// the training cells' log expression, the VAE keeps it as buffers, and a
// saved model embeds exactly as before. "log" reads all genes instead.
TEST(LatentModel, EncoderInputProjectionIsFittedAndSaved) {
  const SmallData& d = small_data();
  auto model = GenerativeModel::create(tiny_spec("vae").set("vae_input_pcs", 5), d.source->genes(), {"A", "B"});
  CountVaeImpl& vae = dynamic_cast<LatentModel&>(*model).vae();
  EXPECT_EQ(vae.settings().input, "pca");
  const Tensor unfitted = vae.named_buffers()["input_rotation"].clone();
  EXPECT_EQ(unfitted.sizes(), (at::IntArrayRef{kModelGenes, 5}));
  EXPECT_EQ(unfitted.abs().sum().item<float>(), 0.0f);
  model->train(*d.source, d.conditions, training(3), {});
  const Tensor rotation = vae.named_buffers()["input_rotation"];  // (G, 5)
  EXPECT_TRUE(at::allclose(rotation.t().matmul(rotation), at::eye(5), 1e-4, 1e-4)) << "orthonormal axes";
  int dims = 0;
  const std::vector<float> before = model->embed(*d.source, &dims);
  const std::string path = ::testing::TempDir() + "/exprflow_vae_pca_input.pt";
  model->save(path);
  auto loaded = GenerativeModel::load(path);
  EXPECT_EQ(loaded->embed(*d.source, &dims), before);
  std::remove(path.c_str());
  EXPECT_EQ(GenerativeModel::load_bytes(model->to_bytes())->embed(*d.source, &dims), before);

  auto logged = GenerativeModel::create(tiny_spec("vae").set("vae_input", "log"), d.source->genes(), {"A", "B"});
  CountVaeImpl& plain = dynamic_cast<LatentModel&>(*logged).vae();
  EXPECT_EQ(plain.named_buffers().size(), 0u);
  EXPECT_EQ(plain.named_parameters()["encoder_in.weight"].size(1), kModelGenes);
  const std::string msg = error_of([&] {
    GenerativeModel::create(tiny_spec("vae").set("vae_input", "scaled"), d.source->genes(), {"A", "B"});
  });
  EXPECT_TRUE(contains(msg, "'vae_input'") && contains(msg, "scaled")) << msg;
}

// A file written before vae_input existed has no such key in its spec; its
// VAE read log expression, and so does the model read back from it.
TEST(LatentModel, FilesWithoutTheInputSettingReadLogExpression) {
  const SmallData& d = small_data();
  auto model = GenerativeModel::create(tiny_spec("vae").set("vae_input", "log"), d.source->genes(), {"A", "B"});
  model->train(*d.source, d.conditions, training(2), {});
  const std::string bytes = model->to_bytes();
  TensorBundle bundle = open_generative_model_bytes(bytes, "test bytes", /*trust_legacy=*/false);
  bundle.meta["spec"].erase("vae_input");
  bundle.meta["spec"].erase("vae_input_pcs");
  auto old = LatentModel::read_model(bundle);
  EXPECT_EQ(old->vae().settings().input, "log");
  int dims = 0;
  EXPECT_EQ(old->embed(*d.source, &dims), model->embed(*d.source, &dims));
}

// =================================================== gene-set encoder (latent_pathway)

namespace {

// Sets {0..3} and {2..5} over kGenes genes; 6..9 in none (the residual token).
Resources two_gene_sets(int64_t n_genes) {
  std::vector<float> member(2 * n_genes, 0.0f);
  for (int64_t g = 0; g < 4; ++g) member[g] = member[n_genes + 2 + g] = 1.0f;
  Resources r;
  r["gene_sets"] = {{2, n_genes}, member, {"first", "second"}, {}};
  return r;
}

}  // namespace

// Each latent token is computed from its own genes alone: changing a gene
// moves exactly the tokens whose set holds it.
TEST(CountVae, GeneSetEncoderTokensReadOnlyTheirGenes) {
  at::manual_seed(5);
  Options spec = CountVaeSettings::defaults();
  spec.set("vae_encoder", "gene_sets").set("vae_input", "log").set("latent_per_token", 2).set("vae_dropout", 0.0)
      .set("vae_hidden", 8);
  const Resources sets = two_gene_sets(kGenes);
  const CountVaeSettings settings = CountVaeSettings::from(spec);
  EXPECT_EQ(CountVaeImpl::latent_dim_for(settings, sets, kGenes), 6);  // (2 sets + residual) x 2
  CountVae vae(kGenes, std::vector<CovariateSpec>{}, settings, sets);
  vae->eval();
  EXPECT_EQ(vae->settings().latent_dim, 6);
  EXPECT_EQ(vae->token_names(), (std::vector<std::string>{"first", "second", "residual_genes"}));
  const Cells cells = synthetic_cells(5, 2);
  torch::NoGradGuard no_grad;
  const Posterior base = vae->encode(cells.log_expression, {});
  ASSERT_EQ(base.mean.sizes(), (std::vector<int64_t>{5, 6}));
  ASSERT_EQ(base.var.sizes(), (std::vector<int64_t>{5, 6}));
  // gene -> tokens that hold it
  const std::map<int64_t, std::set<int64_t>> holders = {{0, {0}}, {3, {0, 1}}, {5, {1}}, {8, {2}}};
  for (const auto& [gene, tokens] : holders) {
    Tensor x = cells.log_expression.clone();
    x.select(1, gene).add_(1.5);
    const Posterior moved = vae->encode(x, {});
    for (int64_t t = 0; t < 3; ++t) {
      const double change = (moved.mean.narrow(1, 2 * t, 2) - base.mean.narrow(1, 2 * t, 2)).abs().max().item<double>() +
                            (moved.var.narrow(1, 2 * t, 2) - base.var.narrow(1, 2 * t, 2)).abs().max().item<double>();
      if (tokens.count(t)) {
        EXPECT_GT(change, 1e-6) << "gene " << gene << " should move token " << t;
      } else {
        EXPECT_EQ(change, 0.0) << "gene " << gene << " moved token " << t;
      }
    }
  }
  const Tensor loadings = vae->token_weight_loadings();  // (T, G)
  ASSERT_EQ(loadings.sizes(), (std::vector<int64_t>{3, kGenes}));
  EXPECT_EQ(loadings[0].narrow(0, 4, kGenes - 4).abs().sum().item<double>(), 0.0);
  EXPECT_GT(loadings[0].narrow(0, 0, 4).min().item<double>(), 0.0);

  // Settings that cannot go with it name themselves; without the resource, it is named.
  std::string msg = error_of([&] { CountVaeSettings::from(Options(spec).set("vae_input", "pca")); });
  EXPECT_TRUE(contains(msg, "'vae_input'") && contains(msg, "gene_sets")) << msg;
  msg = error_of([&] { CountVaeSettings::from(Options(spec).set("encode_condition", 1.0)); });
  EXPECT_TRUE(contains(msg, "'encode_condition'")) << msg;
  msg = error_of([&] { CountVaeSettings::from(Options(spec).set("vae_encoder", "transformer")); });
  EXPECT_TRUE(contains(msg, "'vae_encoder'") && contains(msg, "transformer")) << msg;
  msg = error_of([&] { CountVae(kGenes, std::vector<CovariateSpec>{}, settings, Resources{}); });
  EXPECT_TRUE(contains(msg, "gene_sets")) << msg;
}

// vae_encoder = "set_tokens": the code is vae_set_tokens pooled tokens of
// latent_per_token values; the latent-split flow gets one token per pooled
// token; activations and gradient loadings read them; no weight loadings.
TEST(LatentModel, SetTokenEncoderGivesTheFlowItsPooledTokens) {
  const SmallData& d = small_data();
  const Options spec = Options().set("architecture", "latent_dit").set("seed", 3).set("vae_encoder", "set_tokens")
                          .set("vae_input", "log").set("vae_set_tokens", 3).set("latent_per_token", 2)
                          .set("vae_token_hidden", 8).set("vae_pool_heads", 2).set("vae_hidden", 16)
                          .set("vae_layers", 1).set("token_dim", 8).set("n_heads", 2).set("n_layers", 1);
  auto model = GenerativeModel::create(spec, d.source->genes(), {"A", "B"});
  auto& latent = dynamic_cast<LatentModel&>(*model);
  EXPECT_EQ(latent.spec().integer("latent_dim"), 6);
  EXPECT_EQ(latent.spec().integer("n_tokens"), 3);
  model->train(*d.source, d.conditions, training(1, 2), {});
  int n_tokens = 0, dims = 0;
  const std::vector<float> activations = model->token_activations(*d.source, &n_tokens);
  EXPECT_EQ(n_tokens, 3);
  ASSERT_EQ(activations.size(), static_cast<size_t>(kCells) * 3);
  const std::vector<float> gradient = model->token_gene_loadings("gradient", d.source.get(), &n_tokens);
  ASSERT_EQ(gradient.size(), static_cast<size_t>(3) * kModelGenes);
  double total = 0;
  for (float g : gradient) total += std::abs(g);
  EXPECT_GT(total, 0.0);
  EXPECT_THROW(model->token_gene_loadings("weights", nullptr, &n_tokens), std::invalid_argument);
  auto loaded = GenerativeModel::load_bytes(model->to_bytes());
  EXPECT_EQ(loaded->embed(*d.source, &dims), model->embed(*d.source, &dims));
  EXPECT_EQ(dims, 6);
  const Options o = Options().set("seed", 2).set("steps", 4);
  EXPECT_EQ(loaded->generate(d.conditions, o).counts, model->generate(d.conditions, o).counts);
  // A width the user set otherwise, and heads that do not divide the width, are named.
  std::string msg = error_of([&] { GenerativeModel::create(Options(spec).set("latent_dim", 32), d.source->genes(), {"A", "B"}); });
  EXPECT_TRUE(contains(msg, "'latent_dim'") && contains(msg, "set_tokens")) << msg;
  msg = error_of([&] { CountVaeSettings::from(complete_spec(Options(spec).set("vae_pool_heads", 3))); });
  EXPECT_TRUE(contains(msg, "'vae_pool_heads'")) << msg;
  msg = error_of([&] { CountVaeSettings::from(complete_spec(Options(spec).set("vae_input", "pca"))); });
  EXPECT_TRUE(contains(msg, "'vae_input'") && contains(msg, "set_tokens")) << msg;
}

// latent_pathway: the flow gets one token per gene set; token activations,
// names and loadings come from the encoder and survive a save / load.
TEST(LatentModel, LatentPathwayGivesEachGeneSetAFlowToken) {
  const SmallData& d = small_data();
  const Options spec = Options().set("architecture", "latent_pathway").set("seed", 3).set("vae_hidden", 16)
                          .set("vae_layers", 1).set("latent_per_token", 3).set("token_dim", 8).set("n_heads", 2)
                          .set("n_layers", 1);
  auto model = GenerativeModel::create(spec, d.source->genes(), {"A", "B"}, two_gene_sets(kModelGenes));
  auto& latent = dynamic_cast<LatentModel&>(*model);
  EXPECT_EQ(latent.spec().integer("latent_dim"), 9);
  EXPECT_EQ(latent.spec().integer("n_tokens"), 3);
  EXPECT_EQ(latent.latent_network().tokens(at::zeros({2, 9})).sizes(), (std::vector<int64_t>{2, 3, 8}));
  model->train(*d.source, d.conditions, training(1, 2), {});
  EXPECT_EQ(model->token_names(), (std::vector<std::string>{"first", "second", "residual_genes"}));
  int n_tokens = 0, dims = 0;
  const std::vector<float> activations = model->token_activations(*d.source, &n_tokens);
  EXPECT_EQ(n_tokens, 3);
  ASSERT_EQ(activations.size(), static_cast<size_t>(kCells) * 3);
  for (float a : activations) ASSERT_TRUE(std::isfinite(a) && a >= 0);
  // Gradient loadings: exactly 0 at the genes outside a token's set.
  const std::vector<float> gradient = model->token_gene_loadings("gradient", d.source.get(), &n_tokens);
  ASSERT_EQ(gradient.size(), static_cast<size_t>(3) * kModelGenes);
  for (int64_t g = 4; g < kModelGenes; ++g) EXPECT_EQ(gradient[g], 0.0f) << "token 'first', gene " << g;
  double inside = 0;
  for (int64_t g = 0; g < 4; ++g) inside += std::abs(gradient[g]);
  EXPECT_GT(inside, 0.0);
  EXPECT_EQ(model->token_gene_loadings("weights", nullptr, &n_tokens).size(), static_cast<size_t>(3) * kModelGenes);

  auto loaded = GenerativeModel::load_bytes(model->to_bytes());
  EXPECT_EQ(loaded->token_names(), model->token_names());
  EXPECT_EQ(loaded->embed(*d.source, &dims), model->embed(*d.source, &dims));
  EXPECT_EQ(dims, 9);
  const Options o = Options().set("seed", 2).set("steps", 4);
  EXPECT_EQ(loaded->generate(d.conditions, o).counts, model->generate(d.conditions, o).counts);
  // Without gene sets the resource is named.
  const std::string msg = error_of([&] { GenerativeModel::create(spec, d.source->genes(), {"A", "B"}); });
  EXPECT_TRUE(contains(msg, "gene_sets")) << msg;
}
