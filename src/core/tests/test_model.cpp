// The torch-free API end to end: create, train, generate, embed, save, load,
// on a small synthetic two-condition negative binomial dataset.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/expression_model.hpp"
#include "data/expression_source.hpp"
#include "exprflow/api.hpp"
#include "io/model_archive.hpp"
#include "io/model_envelope.hpp"
#include "io/tensor_bundle.hpp"

using namespace exprflow;

namespace {

constexpr int kGenes = 30, kCells = 300;

Options tiny_spec() {
  Options o;
  o.set("architecture", "latent_tokens").set("n_tokens", 4).set("token_dim", 16).set("n_layers", 2)
      .set("n_heads", 2).set("hidden", 32).set("timesteps", 100).set("seed", 5);
  return o;
}

Options train_options() {
  Options o;
  o.set("epochs", 20).set("batch_size", 32).set("learning_rate", 3e-3).set("validation_fraction", 0.2)
      .set("patience", 20).set("seed", 2).set("ema_decay", 0.99);
  return o;
}

std::vector<std::string> gene_names(const std::string& prefix = "G") {
  std::vector<std::string> g;
  for (int i = 0; i < kGenes; ++i) g.push_back(prefix + std::to_string(i + 1));
  return g;
}

// Condition 0 ("A") expresses genes 0..9 highly, condition 1 ("B") genes
// 10..19; genes 20..29 are shared, with a spread of levels. NB(theta = 5),
// library sizes 1000..5000.
struct Dataset {
  std::vector<double> counts;  // genes x cells, column-major
  std::vector<int> conditions;
  std::unique_ptr<DenseExpressionSource> source;
  std::vector<std::vector<double>> real_mean;  // per condition, per gene: mean log-normalised
};

std::vector<double> proportions(int condition) {
  std::vector<double> w(kGenes);
  for (int g = 0; g < kGenes; ++g) {
    if (g < 10) w[g] = condition == 0 ? 8.0 + g : 0.5;
    else if (g < 20) w[g] = condition == 1 ? 8.0 + (g - 10) : 0.5;
    else w[g] = 1.0 + 0.5 * (g - 20);
  }
  double total = 0;
  for (double v : w) total += v;
  for (double& v : w) v /= total;
  return w;
}

const Dataset& dataset() {
  static const Dataset d = [] {
    Dataset d;
    std::mt19937_64 rng(2024);
    std::uniform_real_distribution<double> lib(1000, 5000);
    d.counts.resize(static_cast<size_t>(kGenes) * kCells);
    const std::vector<double> p[2] = {proportions(0), proportions(1)};
    for (int c = 0; c < kCells; ++c) {
      const int cond = c % 2;
      d.conditions.push_back(cond);
      const double L = lib(rng);
      for (int g = 0; g < kGenes; ++g) {
        const double mu = p[cond][g] * L, theta = 5.0;
        const double rate = std::gamma_distribution<double>(theta, mu / theta)(rng);
        d.counts[static_cast<size_t>(c) * kGenes + g] = std::poisson_distribution<int>(rate)(rng);
      }
    }
    d.source = std::make_unique<DenseExpressionSource>(gene_names(), kCells, d.counts.data());
    d.real_mean.assign(2, std::vector<double>(kGenes, 0.0));
    std::vector<float> row(kGenes);
    for (int c = 0; c < kCells; ++c) {
      d.source->fill_log_normalised({c}, row.data());
      for (int g = 0; g < kGenes; ++g) d.real_mean[c % 2][g] += row[g] / (kCells / 2);
    }
    return d;
  }();
  return d;
}

double correlation(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = a.size();
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; ++i) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "exprflow_test_" + name; }

std::string runtime_error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than std::runtime_error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

// One model trained once and shared by the tests below (training is the
// expensive part; every test only reads the model or generates from it).
class TrainedModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = GenerativeModel::create(tiny_spec(), gene_names(), {"A", "B"}).release();
    report_ = new TrainReport(model_->train(*dataset().source, dataset().conditions, train_options(), {}));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete report_;
    model_ = nullptr;
    report_ = nullptr;
  }
  static GenerativeModel* model_;
  static TrainReport* report_;
};
GenerativeModel* TrainedModel::model_ = nullptr;
TrainReport* TrainedModel::report_ = nullptr;

Options sample_options(long seed) {
  Options o;
  o.set("seed", static_cast<double>(seed)).set("steps", 25);
  return o;
}

}  // namespace

TEST_F(TrainedModel, TrainingLowersValidationLoss) {
  ASSERT_NE(model_, nullptr);
  EXPECT_TRUE(model_->trained());
  const TrainReport& r = *report_;
  ASSERT_EQ(r.history.size(), 20u) << "20 epochs requested (patience 20 cannot trigger)";
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.steps, 20 * 8) << "240 training cells / batch 32 = 8 steps per epoch";
  double best = INFINITY;
  for (const EpochRecord& e : r.history) {
    ASSERT_TRUE(std::isfinite(e.validation_loss));
    ASSERT_TRUE(std::isfinite(e.train_loss));
    best = std::min(best, e.validation_loss);
  }
  const double first = r.history.front().validation_loss;
  // Epoch 1 is already trained for 8 steps; a further 10% drop is learning
  // (an untrained or frozen network stays flat).
  EXPECT_LT(best, 0.9 * first) << "validation loss " << first << " -> best " << best;
  EXPECT_EQ(r.history[r.best_epoch - 1].validation_loss, best);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  // The model keeps the history.
  ASSERT_EQ(model_->history().size(), 20u);
  EXPECT_EQ(model_->history().back().epoch, 20);
  EXPECT_GT(model_->parameter_count(), 1000);
  EXPECT_EQ(model_->genes(), gene_names());
  EXPECT_EQ(model_->condition_levels(), (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(model_->spec().integer("token_dim"), 16);
  EXPECT_EQ(model_->device(), "cpu");
}

TEST_F(TrainedModel, GenerateShapesAndRanges) {
  const std::vector<int> conditions = {0, 1, 1, 0, -1, 1, 0};
  GeneratedCells out = model_->generate(conditions, sample_options(3));
  EXPECT_EQ(out.n_genes, kGenes);
  EXPECT_EQ(out.n_cells, 7);
  ASSERT_EQ(out.logcounts.size(), static_cast<size_t>(kGenes) * 7);
  ASSERT_EQ(out.counts.size(), static_cast<size_t>(kGenes) * 7);
  ASSERT_EQ(out.library_size.size(), 7u);
  for (float v : out.logcounts) {
    ASSERT_TRUE(std::isfinite(v));
    ASSERT_GE(v, 0.0f);
  }
  for (int32_t v : out.counts) ASSERT_GE(v, 0);
  long total = 0;
  for (int32_t v : out.counts) total += v;
  EXPECT_GT(total, 0) << "all generated counts are zero";

  // Library sizes are drawn from training cells of the same condition
  // (the unconditional cell: from all of them).
  const Dataset& d = dataset();
  std::set<double> libs[2], all;
  for (int c = 0; c < kCells; ++c) {
    libs[d.conditions[c]].insert(d.source->library_sizes()[c]);
    all.insert(d.source->library_sizes()[c]);
  }
  for (int i = 0; i < 7; ++i) {
    const std::set<double>& pool = conditions[i] >= 0 ? libs[conditions[i]] : all;
    EXPECT_TRUE(pool.count(out.library_size[i])) << "cell " << i << ": library size " << out.library_size[i]
                                                 << " is not one of its condition's";
  }

  // Same seed: same cells; other seed: other cells.
  GeneratedCells again = model_->generate(conditions, sample_options(3));
  EXPECT_EQ(again.logcounts, out.logcounts);
  EXPECT_EQ(again.counts, out.counts);
  GeneratedCells other = model_->generate(conditions, sample_options(4));
  EXPECT_NE(other.logcounts, out.logcounts);

  // Any batch size holding all cells gives the same cells. (Smaller batches
  // give other, equally valid cells: the noise is drawn per batch.)
  Options one_batch = sample_options(3);
  one_batch.set("batch_size", 7);
  EXPECT_EQ(model_->generate(conditions, one_batch).logcounts, out.logcounts);

  // DDPM works too; bad options are errors.
  Options ddpm = sample_options(5);
  ddpm.set("method", "ddpm");
  GeneratedCells d2 = model_->generate({0, 1}, ddpm);
  for (float v : d2.logcounts) ASSERT_TRUE(std::isfinite(v) && v >= 0);
  EXPECT_THROW(model_->generate({2}, sample_options(1)), std::invalid_argument);
  Options too_many = sample_options(1);
  too_many.set("steps", 101);
  EXPECT_THROW(model_->generate({0}, too_many), std::invalid_argument);
  Options typo = sample_options(1);
  typo.set("stepz", 10);
  EXPECT_THROW(model_->generate({0}, typo), std::invalid_argument);
}

// With eps-prediction this failed (generated cell types ~50/50 whatever the
// condition, also after 200 epochs and with guidance 10): the eps loss weighs
// the clean data by ~sqrt(alpha_bar) at the noise levels where a cell's type
// is decided. The default v-prediction fixed it.
TEST_F(TrainedModel, ConditionalGenerationFollowsCondition) {
  const int n = 300;
  std::vector<int> conditions(2 * n);
  for (int i = 0; i < 2 * n; ++i) conditions[i] = i < n ? 0 : 1;
  Options o = sample_options(11);
  o.set("steps", 50);
  GeneratedCells out = model_->generate(conditions, o);
  std::vector<std::vector<double>> gen(2, std::vector<double>(kGenes, 0.0));
  for (int i = 0; i < 2 * n; ++i) {
    for (int g = 0; g < kGenes; ++g) gen[conditions[i]][g] += out.logcounts[static_cast<size_t>(i) * kGenes + g] / n;
  }
  const auto& real = dataset().real_mean;
  const double aa = correlation(gen[0], real[0]), ab = correlation(gen[0], real[1]);
  const double bb = correlation(gen[1], real[1]), ba = correlation(gen[1], real[0]);
  EXPECT_GT(aa, ab) << "cells generated for A look more like B (" << aa << " vs " << ab << ")";
  EXPECT_GT(bb, ba) << "cells generated for B look more like A (" << bb << " vs " << ba << ")";
  // The condition effect itself: generated A - B differences follow the real ones.
  std::vector<double> gen_diff(kGenes), real_diff(kGenes);
  for (int g = 0; g < kGenes; ++g) {
    gen_diff[g] = gen[0][g] - gen[1][g];
    real_diff[g] = real[0][g] - real[1][g];
  }
  EXPECT_GT(correlation(gen_diff, real_diff), 0.5) << "condition effect not learned";
}

// Counterfactual transfer (DDIM inversion under the cell's own condition,
// sampling under the other): cells moved to the other condition look like
// it, cells "moved" to their own come back as themselves, and every cell
// keeps its library size.
TEST_F(TrainedModel, TransferMovesCellsToTheOtherConditionAndKeepsEachCell) {
  const Dataset& d = dataset();
  const std::vector<int> own = d.conditions;
  std::vector<int> other(own.size());
  for (size_t i = 0; i < own.size(); ++i) other[i] = 1 - own[i];
  Options o = sample_options(3);
  o.set("steps", 50);
  const GeneratedCells moved = model_->transfer(*d.source, own, other, o);
  const GeneratedCells back = model_->transfer(*d.source, own, own, o);
  ASSERT_EQ(moved.n_cells, kCells);
  for (int i = 0; i < kCells; ++i) ASSERT_EQ(moved.library_size[i], d.source->library_sizes()[i]);
  // Means per target condition follow the target's real profile.
  std::vector<std::vector<double>> mean(2, std::vector<double>(kGenes, 0.0));
  for (int i = 0; i < kCells; ++i) {
    for (int g = 0; g < kGenes; ++g) {
      mean[other[i]][g] += moved.logcounts[static_cast<size_t>(i) * kGenes + g] / (kCells / 2);
    }
  }
  for (int c : {0, 1}) {
    EXPECT_GT(correlation(mean[c], d.real_mean[c]), correlation(mean[c], d.real_mean[1 - c]))
        << "cells moved to " << c << " do not look like it";
  }
  // Back under its own condition, a cell is closer to itself than to the
  // next cell of its condition.
  std::vector<float> observed(static_cast<size_t>(kCells) * kGenes);
  std::vector<int> all(kCells);
  for (int i = 0; i < kCells; ++i) all[i] = i;
  d.source->fill_log_normalised(all, observed.data());
  auto row = [](const std::vector<float>& m, int i) {
    return std::vector<double>(m.begin() + static_cast<size_t>(i) * kGenes, m.begin() + static_cast<size_t>(i + 1) * kGenes);
  };
  double self = 0, neighbour = 0;
  for (int i = 0; i + 2 < kCells; ++i) {
    self += correlation(row(back.logcounts, i), row(observed, i));
    neighbour += correlation(row(back.logcounts, i), row(observed, i + 2));
  }
  EXPECT_GT(self, neighbour + 0.05 * (kCells - 2)) << "the round trip forgot which cell it was";
  EXPECT_THROW(model_->transfer(*d.source, own, other, Options().set("method", "ddpm")), std::invalid_argument);
  // Counts carried at their quantile need a count law, which gene-space models lack.
  EXPECT_THROW(model_->transfer(*d.source, own, other, Options().set("transfer_noise", "cell")),
               std::invalid_argument);
  // So does a latent shift to unseen combinations.
  EXPECT_THROW(model_->generate(other, Options().set("unseen", "shift")), std::invalid_argument);
}

TEST_F(TrainedModel, EmbedGivesCellsByTokenDim) {
  int dims = -1;
  std::vector<float> e = model_->embed(*dataset().source, &dims);
  EXPECT_EQ(dims, 16);
  ASSERT_EQ(e.size(), static_cast<size_t>(kCells) * 16);
  for (float v : e) ASSERT_TRUE(std::isfinite(v));
  // Different cells, different embeddings.
  EXPECT_FALSE(std::equal(e.begin(), e.begin() + 16, e.begin() + 16));
}

TEST_F(TrainedModel, SaveLoadRoundTrip) {
  const std::string path = temp_path("roundtrip.pt");
  model_->save(path);
  std::unique_ptr<GenerativeModel> loaded = GenerativeModel::load(path);
  ASSERT_NE(loaded, nullptr);
  EXPECT_TRUE(loaded->trained());
  EXPECT_EQ(loaded->genes(), model_->genes());
  EXPECT_EQ(loaded->condition_levels(), model_->condition_levels());
  EXPECT_EQ(loaded->spec().to_json(), model_->spec().to_json());
  EXPECT_EQ(loaded->parameter_count(), model_->parameter_count());
  ASSERT_EQ(loaded->history().size(), model_->history().size());
  for (size_t i = 0; i < loaded->history().size(); ++i) {
    EXPECT_EQ(loaded->history()[i].epoch, model_->history()[i].epoch);
    EXPECT_EQ(loaded->history()[i].validation_loss, model_->history()[i].validation_loss);
    EXPECT_EQ(loaded->history()[i].train_loss, model_->history()[i].train_loss);
  }
  const std::vector<int> conditions = {1, 0, 0, 1, -1};
  GeneratedCells a = model_->generate(conditions, sample_options(21));
  GeneratedCells b = loaded->generate(conditions, sample_options(21));
  EXPECT_EQ(a.logcounts, b.logcounts) << "loaded model generates different logcounts";
  EXPECT_EQ(a.counts, b.counts) << "loaded model generates different counts";
  EXPECT_EQ(a.library_size, b.library_size);
  int da = 0, db = 0;
  EXPECT_EQ(model_->embed(*dataset().source, &da), loaded->embed(*dataset().source, &db));
  std::remove(path.c_str());
}

TEST_F(TrainedModel, WrongGenesAreRejected) {
  const Dataset& d = dataset();
  DenseExpressionSource renamed(gene_names("X"), kCells, d.counts.data());
  std::unique_ptr<GenerativeModel> fresh = GenerativeModel::create(tiny_spec(), gene_names(), {"A", "B"});
  try {
    fresh->train(renamed, d.conditions, train_options(), {});
    FAIL() << "training on other genes did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'X1'"), std::string::npos) << e.what();
  }
  // Fewer genes.
  const std::vector<std::string> all = gene_names();
  std::vector<std::string> fewer(all.begin(), all.begin() + 10);
  DenseExpressionSource small(fewer, kCells, d.counts.data());
  EXPECT_THROW(fresh->train(small, d.conditions, train_options(), {}), std::invalid_argument);
  int dims = 0;
  EXPECT_THROW(model_->embed(renamed, &dims), std::invalid_argument);
  // Wrong number of conditions and out-of-range levels.
  std::vector<int> short_conditions(d.conditions.begin(), d.conditions.begin() + 10);
  EXPECT_THROW(fresh->train(*d.source, short_conditions, train_options(), {}), std::invalid_argument);
  std::vector<int> bad_levels = d.conditions;
  bad_levels[5] = 2;
  EXPECT_THROW(fresh->train(*d.source, bad_levels, train_options(), {}), std::invalid_argument);
  EXPECT_FALSE(fresh->trained());
}

TEST(GenerativeModel, GenerateBeforeTrainingThrows) {
  std::unique_ptr<GenerativeModel> m = GenerativeModel::create(tiny_spec(), gene_names(), {"A", "B"});
  EXPECT_FALSE(m->trained());
  EXPECT_THROW(m->generate({0, 1}, sample_options(1)), std::invalid_argument);
}

TEST(GenerativeModel, CreateValidatesSpec) {
  EXPECT_THROW(GenerativeModel::create(tiny_spec(), {}, {}), std::invalid_argument);
  Options typo = tiny_spec();
  typo.set("n_layer", 3);
  EXPECT_THROW(GenerativeModel::create(typo, gene_names(), {}), std::invalid_argument);
  Options bad_arch = tiny_spec();
  bad_arch.set("architecture", "nope");
  EXPECT_THROW(GenerativeModel::create(bad_arch, gene_names(), {}), std::invalid_argument);
  const std::vector<std::string> archs = GenerativeModel::architectures();
  EXPECT_NE(std::find(archs.begin(), archs.end(), "latent_tokens"), archs.end());
  const Options defaults = GenerativeModel::default_spec("latent_tokens");
  EXPECT_EQ(defaults.text("device"), "cpu");
  EXPECT_TRUE(defaults.has("seed"));
}

TEST(GenerativeModel, SameSeedSameModel) {
  const Dataset& d = dataset();
  Options quick = train_options();
  quick.set("epochs", 3);
  auto a = GenerativeModel::create(tiny_spec(), gene_names(), {"A", "B"});
  auto b = GenerativeModel::create(tiny_spec(), gene_names(), {"A", "B"});
  a->train(*d.source, d.conditions, quick, {});
  b->train(*d.source, d.conditions, quick, {});
  auto* da = dynamic_cast<ExpressionModel*>(a.get());
  auto* db = dynamic_cast<ExpressionModel*>(b.get());
  ASSERT_NE(da, nullptr);
  ASSERT_NE(db, nullptr);
  std::vector<Tensor> pa = da->ema_network().parameters(), pb = db->ema_network().parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(at::equal(pa[i], pb[i])) << "EMA parameter " << i << " differs";
  std::vector<Tensor> na = da->network().parameters(), nb = db->network().parameters();
  for (size_t i = 0; i < na.size(); ++i) EXPECT_TRUE(at::equal(na[i], nb[i])) << "parameter " << i << " differs";
  GeneratedCells ga = a->generate({0, 1, 0}, sample_options(8));
  GeneratedCells gb = b->generate({0, 1, 0}, sample_options(8));
  EXPECT_EQ(ga.logcounts, gb.logcounts);
  EXPECT_EQ(ga.counts, gb.counts);
  for (size_t i = 0; i < a->history().size(); ++i) {
    EXPECT_EQ(a->history()[i].validation_loss, b->history()[i].validation_loss);
  }

  // Another model seed gives other initial weights.
  Options other_spec = tiny_spec();
  other_spec.set("seed", 6);
  auto c = GenerativeModel::create(other_spec, gene_names(), {"A", "B"});
  auto* dc = dynamic_cast<ExpressionModel*>(c.get());
  auto* fresh = dynamic_cast<ExpressionModel*>(GenerativeModel::create(tiny_spec(), gene_names(), {"A", "B"}).release());
  std::unique_ptr<GenerativeModel> owner(fresh);
  EXPECT_FALSE(at::equal(dc->network().parameters()[0], fresh->network().parameters()[0]));
}

TEST(GenerativeModel, UnconditionalModel) {
  const Dataset& d = dataset();
  auto m = GenerativeModel::create(tiny_spec(), gene_names(), {});
  Options quick = train_options();
  quick.set("epochs", 2);
  TrainReport r = m->train(*d.source, {}, quick, {});
  EXPECT_EQ(r.history.size(), 2u);
  GeneratedCells out = m->generate({-1, -1, -1}, sample_options(1));
  EXPECT_EQ(out.n_cells, 3);
  EXPECT_THROW(m->generate({0}, sample_options(1)), std::invalid_argument);
}

TEST(GenerativeModel, LoadErrors) {
  const std::string missing = temp_path("does_not_exist.pt");
  std::remove(missing.c_str());
  std::string m = runtime_error_message([&] { GenerativeModel::load(missing); });
  EXPECT_NE(m.find(missing), std::string::npos) << "message should name the file: " << m;
  EXPECT_NE(m.find("cannot read model file"), std::string::npos) << m;

  const std::string text = temp_path("not_a_model.txt");
  {
    std::ofstream f(text);
    f << "gene,cell\nA,1\n";
  }
  m = runtime_error_message([&] { GenerativeModel::load(text); });
  EXPECT_NE(m.find("not an exprflow model file"), std::string::npos) << m;
  std::remove(text.c_str());

  // A file in exprflow's envelope and tensor format that holds no exprflow model.
  const std::string foreign = temp_path("foreign.pt");
  const auto write_bundle = [&foreign](const Json& meta) {
    TensorBundle bundle;
    bundle.meta = meta;
    bundle.put("weights", at::ones({2}));
    write_file_atomically(foreign, model_file_bytes(bundle), "test");
  };
  write_bundle(Json::object());
  m = runtime_error_message([&] { GenerativeModel::load(foreign); });
  EXPECT_NE(m.find("not an exprflow model file"), std::string::npos) << m;
  write_bundle(Json{{"format", "something-else"}, {"version", 1}});
  m = runtime_error_message([&] { GenerativeModel::load(foreign); });
  EXPECT_NE(m.find("not an exprflow model file"), std::string::npos) << m;
  // An intact envelope around bytes that are not a tensor bundle.
  write_file_atomically(foreign, seal_payload("this is not a tensor bundle"), "test");
  m = runtime_error_message([&] { GenerativeModel::load(foreign); });
  EXPECT_NE(m.find(foreign), std::string::npos) << "message should name the file: " << m;
  EXPECT_NE(m.find("corrupt"), std::string::npos) << m;
  // A model saved before the composable core (format version 1) says so.
  write_bundle(Json{{"format", "exprflow-model"}, {"version", 1}});
  m = runtime_error_message([&] { GenerativeModel::load(foreign); });
  EXPECT_NE(m.find("earlier exprflow"), std::string::npos) << m;
  EXPECT_NE(m.find("fit the model again"), std::string::npos) << m;
  // A newer format version.
  write_bundle(Json{{"format", "exprflow-model"}, {"version", 99}});
  m = runtime_error_message([&] { GenerativeModel::load(foreign); });
  EXPECT_NE(m.find("newer exprflow"), std::string::npos) << m;
  std::remove(foreign.c_str());

  // Saving to an unwritable place is a runtime_error naming the path.
  auto model = GenerativeModel::create(tiny_spec(), gene_names(), {});
  const std::string bad = "/nonexistent_dir_exprflow/model.pt";
  m = runtime_error_message([&] { model->save(bad); });
  EXPECT_NE(m.find(bad), std::string::npos) << m;
}
