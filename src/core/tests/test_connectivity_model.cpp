// The connectivity API end to end on small synthetic region data: every
// architecture's shapes, pooling and CLS modes, (a)symmetry, training on a
// learnable target, determinism, save/load, and clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "connectivity/connectivity_model.hpp"
#include "exprflow/connectivity.hpp"
#include "test_connectivity_helpers.hpp"

using namespace exprflow;
using namespace exprflow::testing_connectivity;

namespace {

constexpr int kRegions = 6, kGenes = 20, kDim = 12;

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "exprflow_conn_" + name; }

template <typename E>
std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

double mean_squared(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) s += (a[k] - b[k]) * double(a[k] - b[k]);
  return s / a.size();
}

double variance(const std::vector<float>& a) {
  double m = 0, s = 0;
  for (float v : a) m += v / a.size();
  for (float v : a) s += (v - m) * (v - m) / a.size();
  return s;
}

Options quick_training(int epochs) {
  Options o;
  o.set("epochs", epochs).set("batch_size", 16).set("learning_rate", 3e-3).set("patience", 0).set("seed", 3)
      .set("warmup_fraction", 0.0);
  return o;
}

}  // namespace

TEST(ConnectivityModel, RegistryAndDefaults) {
  EXPECT_EQ(ConnectivityModel::architectures(),
            (std::vector<std::string>{"bilinear", "cross_attention", "gene_self_attention", "self_attention_chunks",
                                      "self_attention_chunks_pooled"}));
  Options cross = ConnectivityModel::default_spec("cross_attention");
  EXPECT_EQ(cross.integer("n_bins"), 5);
  EXPECT_EQ(cross.integer("d_model"), 128);
  EXPECT_EQ(cross.integer("n_layers"), 4);
  EXPECT_EQ(cross.integer("n_heads"), 4);
  EXPECT_DOUBLE_EQ(cross.number("dropout"), 0.1);
  EXPECT_EQ(cross.text("cls"), "random");
  EXPECT_EQ(cross.text("pooling"), "mean");
  EXPECT_EQ(cross.text("head_hidden"), "512,256,128");
  EXPECT_EQ(ConnectivityModel::default_spec("self_attention_chunks").integer("chunk_size"), 32);
  Options train = ConnectivityModel::default_train_options("cross_attention");
  EXPECT_EQ(train.to_json(), ConnectivityModel::default_train_options("gene_self_attention").to_json())
      << "the attention models share their training defaults";
  EXPECT_DOUBLE_EQ(train.number("learning_rate"), 1e-3);
  EXPECT_EQ(train.integer("batch_size"), 512);
  EXPECT_DOUBLE_EQ(train.number("weight_decay"), 0.01);
  EXPECT_EQ(train.integer("epochs"), 100);
  EXPECT_EQ(train.integer("patience"), 10);
  EXPECT_TRUE(train.flag("cosine", false));
  EXPECT_DOUBLE_EQ(train.number("memory_budget_mb"), 1024);
  // Unknown names list the valid ones.
  const std::string msg = error_message<std::invalid_argument>(
      [] { ConnectivityModel::default_spec("cross_atention"); });
  EXPECT_TRUE(contains(msg, "cross_atention")) << msg;
  EXPECT_TRUE(contains(msg, "'cross_attention'") && contains(msg, "'gene_self_attention'")) << msg;
}

TEST(ConnectivityModel, EveryPoolingAndClsModeGivesFiniteOutputs) {
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const GeneEmbedding genes = synthetic_embedding(kGenes, kDim);
  const RegionPairs pairs = all_pairs(data);
  for (const char* pooling : {"mean", "attention", "cls"}) {
    for (const char* cls : {"random", "spatial"}) {
      for (int n_cls : {1, 3}) {
        for (int alibi : {0, 1}) {
          SCOPED_TRACE(std::string(pooling) + " / " + cls + " / n_cls " + std::to_string(n_cls) + " / alibi " +
                       std::to_string(alibi));
          Options spec = tiny_spec("cross_attention");
          spec.set("pooling", pooling).set("cls", cls).set("n_cls", n_cls).set("alibi", alibi);
          auto model = ConnectivityModel::create(spec, genes);
          std::vector<float> y = model->predict(data, pairs, 7);
          ASSERT_EQ(y.size(), pairs.i.size());
          for (float v : y) ASSERT_TRUE(std::isfinite(v));
          // Batching does not change predictions.
          std::vector<float> y_one = model->predict(data, pairs, 1000);
          for (size_t k = 0; k < y.size(); ++k) ASSERT_NEAR(y[k], y_one[k], 1e-5);
          int rows = 0, cols = 0;
          std::vector<float> map = model->attention_map(data, 1, 4, 1, &rows, &cols);
          ASSERT_EQ(rows, n_cls + kGenes);
          ASSERT_EQ(cols, kGenes);
          ASSERT_EQ(map.size(), static_cast<size_t>(rows) * cols);
          for (int r = 0; r < rows; ++r) {
            double s = 0;
            for (int c = 0; c < cols; ++c) s += map[r * cols + c];
            ASSERT_NEAR(s, 1.0, 1e-4) << "row " << r;
          }
        }
      }
    }
  }
  // Learned bins and the comparison models.
  Options learned = tiny_spec("cross_attention");
  learned.set("learned_bins", 1);
  EXPECT_EQ(ConnectivityModel::create(learned, genes)->predict(data, pairs, 64).size(), pairs.i.size());
  struct Case {
    const char* name;
    int tokens;
  };
  for (const Case& c : {Case{"self_attention_chunks", 3}, Case{"self_attention_chunks_pooled", 3},
                        Case{"gene_self_attention", kGenes}}) {
    SCOPED_TRACE(c.name);
    auto model = ConnectivityModel::create(tiny_spec(c.name), genes);
    std::vector<float> y = model->predict(data, pairs, 8);
    ASSERT_EQ(y.size(), pairs.i.size());
    for (float v : y) ASSERT_TRUE(std::isfinite(v));
    int rows = 0, cols = 0;
    std::vector<float> map = model->attention_map(data, 0, 2, 0, &rows, &cols);
    EXPECT_EQ(rows, c.tokens) << "20 genes in chunks of 8: 3 chunks";
    EXPECT_EQ(cols, c.tokens);
    EXPECT_EQ(map.size(), static_cast<size_t>(c.tokens) * c.tokens);
  }
}

TEST(ConnectivityModel, SpatialClsNeedsCoordinates) {
  RegionData data = synthetic_regions(kRegions, kGenes);
  data.coords.clear();
  Options spec = tiny_spec("cross_attention");
  spec.set("cls", "spatial");
  auto model = ConnectivityModel::create(spec, synthetic_embedding(kGenes, kDim));
  const std::string msg = error_message<std::invalid_argument>([&] { model->predict(data, all_pairs(data), 8); });
  EXPECT_TRUE(contains(msg, "spatial") && contains(msg, "coordinates")) << msg;
  // The random CLS does not need them.
  auto random = ConnectivityModel::create(tiny_spec("cross_attention"), synthetic_embedding(kGenes, kDim));
  EXPECT_EQ(random->predict(data, all_pairs(data), 8).size(), 30u);
}

TEST(ConnectivityModel, CrossAttentionIsDirectionalUnlessBidirectional) {
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const GeneEmbedding genes = synthetic_embedding(kGenes, kDim);
  RegionPairs forward, backward;
  for (int i = 0; i < kRegions; ++i) {
    for (int j = i + 1; j < kRegions; ++j) {
      forward.i.push_back(i);
      forward.j.push_back(j);
      backward.i.push_back(j);
      backward.j.push_back(i);
    }
  }
  for (const char* cls : {"random", "spatial"}) {
    SCOPED_TRACE(cls);
    Options spec = tiny_spec("cross_attention");
    spec.set("cls", cls);
    auto one_way = ConnectivityModel::create(spec, genes);
    std::vector<float> a = one_way->predict(data, forward, 64), b = one_way->predict(data, backward, 64);
    double largest = 0;
    for (size_t k = 0; k < a.size(); ++k) largest = std::max(largest, double(std::fabs(a[k] - b[k])));
    EXPECT_GT(largest, 1e-4) << "f(i, j) == f(j, i) for every pair without bidirectional";

    spec.set("bidirectional", 1);
    auto both = ConnectivityModel::create(spec, genes);
    a = both->predict(data, forward, 64);
    b = both->predict(data, backward, 64);
    for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-5) << "pair " << k;
  }
}

TEST(ConnectivityModel, QuerySelfAttentionLetsClsAndRegionIInteract) {
  // Pure cross-attention never mixes queries: with mean pooling the CLS input
  // (here: coordinates) cannot change a prediction, and with CLS pooling
  // region i's expression cannot. query_self_attention = 1 changes both.
  const RegionData data = synthetic_regions(kRegions, kGenes);
  RegionData moved = data;
  for (float& c : moved.coords) c = c * 0.5f + (&c - moved.coords.data()) % 5;  // other normalised coordinates
  RegionPairs pairs;
  pairs.i = {0, 2};
  pairs.j = {1, 1};
  for (int query_self : {0, 1}) {
    SCOPED_TRACE("query_self_attention " + std::to_string(query_self));
    Options spec = tiny_spec("cross_attention");
    spec.set("cls", "spatial").set("query_self_attention", query_self);
    auto mean_pool = ConnectivityModel::create(spec, synthetic_embedding(kGenes, kDim));
    const bool coords_matter = mean_pool->predict(data, pairs, 8) != mean_pool->predict(moved, pairs, 8);
    EXPECT_EQ(coords_matter, query_self == 1);
    spec.set("cls", "random").set("pooling", "cls");
    auto cls_pool = ConnectivityModel::create(spec, synthetic_embedding(kGenes, kDim));
    const std::vector<float> y = cls_pool->predict(data, pairs, 8);
    EXPECT_EQ(y[0] != y[1], query_self == 1) << "pairs (1, 2) and (3, 2) differ only in region i";
  }
}

TEST(ConnectivityModel, SiameseEncodesDistinctRegionsOnceWithSameResult) {
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const RegionPairs pairs = all_pairs(data);
  PairConnectivityModel model(tiny_spec("gene_self_attention"), synthetic_embedding(kGenes, kDim));
  Tensor x = at::tensor(data.expression).view({kRegions, kGenes});  // (R, G)
  std::vector<int64_t> i(pairs.i.begin(), pairs.i.end()), j(pairs.j.begin(), pairs.j.end());
  PairBatch batch;
  batch.i = at::tensor(i);
  batch.j = at::tensor(j);
  batch.x_i = x.index_select(0, batch.i);
  batch.x_j = x.index_select(0, batch.j);
  torch::NoGradGuard no_grad;
  Tensor per_pair = model.ema_network().forward(batch);  // every row encoded
  batch.expression = x;
  Tensor per_region = model.ema_network().forward(batch);  // 6 distinct regions encoded
  ASSERT_EQ(per_region.sizes(), (std::vector<int64_t>{30}));
  EXPECT_TRUE(at::allclose(per_pair, per_region, 1e-5, 1e-6))
      << "max difference " << (per_pair - per_region).abs().max().item<float>();
}

TEST(ConnectivityModel, TrainingLearnsSyntheticTargets) {
  const RegionData data = synthetic_regions(10, kGenes);
  const RegionPairs correlation = all_pairs(data);  // 90 pairs, target: correlation of the two profiles
  // A directional target from the regions' mean expression m:
  // 3 (m_i - m_j) + 40 (m_i - 1/2)(m_j - 1/2).
  RegionPairs directional = correlation;
  std::vector<double> m(10, 0.0);
  for (int r = 0; r < 10; ++r) {
    for (int g = 0; g < kGenes; ++g) m[r] += data.expression[r * kGenes + g] / kGenes;
  }
  for (size_t k = 0; k < directional.i.size(); ++k) {
    const double a = m[directional.i[k]], b = m[directional.j[k]];
    directional.target[k] = static_cast<float>(3 * (a - b) + 40 * (a - 0.5) * (b - 0.5));
  }
  // The cross-attention model gets the directional target: with mean pooling
  // it learns the correlation too, but only after ~100 plateau epochs at this
  // size (its queries must first learn to find the same gene among the keys).
  struct Case {
    const char* architecture;
    const RegionPairs* pairs;
  };
  for (const Case& c : {Case{"cross_attention", &directional}, Case{"self_attention_chunks_pooled", &correlation}}) {
    SCOPED_TRACE(c.architecture);
    const RegionPairs& pairs = *c.pairs;
    const double baseline = variance(pairs.target);  // MSE of predicting the mean
    Options spec = tiny_spec(c.architecture);
    spec.set("dropout", 0.0);
    auto model = ConnectivityModel::create(spec, synthetic_embedding(kGenes, kDim));
    const std::vector<float> before = model->predict(data, pairs, 32);
    const TrainReport report = model->train(data, pairs, RegionPairs(), quick_training(40), {});
    ASSERT_EQ(report.history.size(), 40u);
    EXPECT_EQ(report.steps, 40 * 6) << "90 pairs / batch 16 = 6 steps per epoch";
    EXPECT_FALSE(report.stopped_early);
    EXPECT_TRUE(std::isnan(report.history[0].validation_loss)) << "no validation pairs";
    const double mse = mean_squared(model->predict(data, pairs, 32), pairs.target);
    EXPECT_LT(mse, 0.1 * baseline) << "MSE " << mse << " vs variance of the target " << baseline
                                   << " (untrained: " << mean_squared(before, pairs.target) << ")";
    EXPECT_LT(report.history.back().train_loss, 0.5 * report.history.front().train_loss);
  }
}

TEST(ConnectivityModel, SeedMakesTrainingDeterministic) {
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const RegionPairs pairs = all_pairs(data);
  RegionPairs train, validation;
  for (size_t k = 0; k < pairs.i.size(); ++k) {
    RegionPairs& to = k % 5 == 0 ? validation : train;
    to.i.push_back(pairs.i[k]);
    to.j.push_back(pairs.j[k]);
    to.target.push_back(pairs.target[k]);
  }
  auto run = [&](int seed) {
    Options spec = tiny_spec("cross_attention");  // dropout 0.1: the seed must fix it too
    spec.set("seed", seed);
    auto model = ConnectivityModel::create(spec, synthetic_embedding(kGenes, kDim));
    Options options = quick_training(4);
    options.set("seed", seed);
    TrainReport report = model->train(data, train, validation, options, {});
    std::vector<double> losses;
    for (const EpochRecord& r : report.history) {
      losses.push_back(r.train_loss);
      losses.push_back(r.validation_loss);
    }
    return std::make_pair(model->predict(data, pairs, 16), losses);
  };
  const auto first = run(5), again = run(5), other = run(6);
  EXPECT_EQ(first.first, again.first);
  EXPECT_EQ(first.second, again.second);
  EXPECT_NE(first.first, other.first);
  for (double v : first.second) EXPECT_TRUE(std::isfinite(v)) << "validation loss missing";
}

TEST(ConnectivityModel, EarlyStoppingAndSchedule) {
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const RegionPairs pairs = all_pairs(data);
  // Validation targets that training cannot fit (their negation): the
  // validation loss stops improving, so patience 2 stops the run early.
  RegionPairs validation = pairs;
  for (float& t : validation.target) t = -3 * t + 2;
  auto model = ConnectivityModel::create(tiny_spec("self_attention_chunks"), synthetic_embedding(kGenes, kDim));
  Options options = quick_training(60);
  options.set("patience", 2).set("cosine", 0);
  TrainReport report = model->train(data, pairs, validation, options, {});
  EXPECT_TRUE(report.stopped_early);
  EXPECT_LT(report.history.size(), 60u);
  EXPECT_EQ(report.history.size(), static_cast<size_t>(report.best_epoch + 2));
  // No cosine decay: the learning rate stays at its peak (no warm-up here).
  for (const EpochRecord& r : report.history) EXPECT_DOUBLE_EQ(r.learning_rate, 3e-3);
  // The model ends on its best epoch's weights: predict() reproduces its validation loss.
  const double best = report.history[report.best_epoch - 1].validation_loss;
  EXPECT_NEAR(mean_squared(model->predict(data, validation, 64), validation.target), best, 1e-5 * (1 + best));
  // History accumulates over calls, epochs continue.
  const size_t before = model->history().size();
  model->train(data, pairs, RegionPairs(), quick_training(2), {});
  ASSERT_EQ(model->history().size(), before + 2);
  EXPECT_EQ(model->history().back().epoch, static_cast<int>(before + 2));
}

TEST(ConnectivityModel, BatchesOverTheMemoryBudgetRunInPassesWithTheSameResult) {
  // A tiny budget splits every batch of 16 pairs into passes of one or two
  // pairs; without dropout the gradients, hence the run, are the same.
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const RegionPairs pairs = all_pairs(data);
  auto run = [&](double budget_mb) {
    Options spec = tiny_spec("cross_attention");
    spec.set("dropout", 0.0);
    auto model = ConnectivityModel::create(spec, synthetic_embedding(kGenes, kDim));
    Options options = quick_training(3);
    options.set("memory_budget_mb", budget_mb);
    TrainReport report = model->train(data, pairs, pairs, options, {});
    return std::make_pair(model->predict(data, pairs, 64), report);
  };
  // One pair of this model holds 2 heads x (1 + 20) x 20 weights per layer:
  // 4 bytes x 3 copies x 2 layers x 840 = 20,160 bytes, so 0.02 MB is one pair per pass.
  const auto whole = run(1024), parts = run(0.02);
  ASSERT_EQ(whole.second.history.size(), parts.second.history.size());
  for (size_t e = 0; e < whole.second.history.size(); ++e) {
    EXPECT_NEAR(whole.second.history[e].train_loss, parts.second.history[e].train_loss, 1e-5);
    EXPECT_NEAR(whole.second.history[e].validation_loss, parts.second.history[e].validation_loss, 1e-5);
  }
  for (size_t k = 0; k < whole.first.size(); ++k) EXPECT_NEAR(whole.first[k], parts.first[k], 1e-4);
  // And it did train: the parameters moved away from the untrained model's.
  auto untrained = ConnectivityModel::create(tiny_spec("cross_attention").set("dropout", 0.0),
                                             synthetic_embedding(kGenes, kDim));
  EXPECT_NE(untrained->predict(data, pairs, 64), parts.first);
  EXPECT_THROW(run(0), std::invalid_argument);
}

TEST(ConnectivityModel, InterruptLeavesUsableModel) {
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const RegionPairs pairs = all_pairs(data);
  auto model = ConnectivityModel::create(tiny_spec("cross_attention"), synthetic_embedding(kGenes, kDim));
  TrainCallbacks callbacks;
  long seen = 0;
  callbacks.on_step = [&](long step, long total, double loss) {
    seen = step;
    EXPECT_EQ(total, 10 * 2);
    EXPECT_TRUE(std::isfinite(loss));
    return step < 3;
  };
  TrainReport report = model->train(data, pairs, RegionPairs(), quick_training(10), callbacks);
  EXPECT_TRUE(report.interrupted);
  EXPECT_EQ(report.steps, 3);
  EXPECT_EQ(seen, 3);
  for (float v : model->predict(data, pairs, 8)) EXPECT_TRUE(std::isfinite(v));
}

TEST(ConnectivityModel, SaveLoadIsBitIdentical) {
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const RegionPairs pairs = all_pairs(data);
  for (const char* architecture : {"cross_attention", "gene_self_attention"}) {
    SCOPED_TRACE(architecture);
    Options spec = tiny_spec(architecture);
    if (std::string(architecture) == "cross_attention") spec.set("cls", "spatial").set("learned_bins", 1);
    auto model = ConnectivityModel::create(spec, synthetic_embedding(kGenes, kDim));
    model->train(data, pairs, pairs, quick_training(3), {});
    const std::string path = temp_path(std::string(architecture) + ".pt");
    model->save(path);
    auto loaded = ConnectivityModel::load(path);
    EXPECT_EQ(loaded->predict(data, pairs, 16), model->predict(data, pairs, 16));
    EXPECT_EQ(loaded->spec().to_json(), model->spec().to_json());
    EXPECT_EQ(loaded->parameter_count(), model->parameter_count());
    ASSERT_EQ(loaded->history().size(), 3u);
    for (size_t e = 0; e < 3; ++e) {
      EXPECT_EQ(loaded->history()[e].train_loss, model->history()[e].train_loss);
      EXPECT_EQ(loaded->history()[e].validation_loss, model->history()[e].validation_loss);
    }
    int r1 = 0, c1 = 0, r2 = 0, c2 = 0;
    EXPECT_EQ(loaded->attention_map(data, 2, 3, 1, &r1, &c1), model->attention_map(data, 2, 3, 1, &r2, &c2));
    // Coordinates are scaled by the training data's ranges, also after loading:
    // a subset of regions gets the same predictions as in the full data.
    RegionData subset;
    subset.n_regions = 2;
    subset.n_genes = kGenes;
    for (int r : {2, 4}) {
      subset.expression.insert(subset.expression.end(), data.expression.begin() + r * kGenes,
                               data.expression.begin() + (r + 1) * kGenes);
      subset.coords.insert(subset.coords.end(), data.coords.begin() + r * 3, data.coords.begin() + (r + 1) * 3);
    }
    RegionPairs one;
    one.i = {0};
    one.j = {1};
    RegionPairs full_one;
    full_one.i = {2};
    full_one.j = {4};
    EXPECT_EQ(loaded->predict(subset, one, 1), model->predict(data, full_one, 1));
    std::remove(path.c_str());
  }
}

TEST(ConnectivityModel, LoadErrorsAreClear) {
  std::string msg = error_message<std::runtime_error>([] { ConnectivityModel::load(temp_path("nope.pt")); });
  EXPECT_TRUE(contains(msg, "nope.pt")) << msg;
  const std::string garbage = temp_path("garbage.pt");
  {
    std::ofstream out(garbage);
    out << "this is not a model";
  }
  msg = error_message<std::runtime_error>([&] { ConnectivityModel::load(garbage); });
  EXPECT_TRUE(contains(msg, "garbage.pt") && contains(msg, "not an exprflow connectivity model")) << msg;
  std::remove(garbage.c_str());
}

TEST(ConnectivityModel, BadInputsAreClearErrors) {
  const RegionData data = synthetic_regions(kRegions, kGenes);
  const GeneEmbedding genes = synthetic_embedding(kGenes, kDim);
  const RegionPairs pairs = all_pairs(data);
  auto invalid = [](const std::function<void()>& f) { return error_message<std::invalid_argument>(f); };

  // Specs.
  std::string msg = invalid([&] {
    Options spec = tiny_spec("cross_attention");
    spec.set("n_layer", 3);
    ConnectivityModel::create(spec, genes);
  });
  EXPECT_TRUE(contains(msg, "n_layer") && contains(msg, "n_layers")) << msg;
  msg = invalid([&] { ConnectivityModel::create(Options().set("architecture", "transformer"), genes); });
  EXPECT_TRUE(contains(msg, "transformer") && contains(msg, "'cross_attention'")) << msg;
  msg = invalid([&] { ConnectivityModel::create(Options(), genes); });
  EXPECT_TRUE(contains(msg, "architecture")) << msg;
  msg = invalid([&] { ConnectivityModel::create(tiny_spec("cross_attention").set("pooling", "max"), genes); });
  EXPECT_TRUE(contains(msg, "pooling") && contains(msg, "max")) << msg;
  msg = invalid([&] { ConnectivityModel::create(tiny_spec("cross_attention").set("cls", "zero"), genes); });
  EXPECT_TRUE(contains(msg, "cls")) << msg;
  msg = invalid([&] { ConnectivityModel::create(tiny_spec("cross_attention").set("n_heads", 3), genes); });
  EXPECT_TRUE(contains(msg, "d_model 16") && contains(msg, "n_heads 3")) << msg;
  msg = invalid([&] { ConnectivityModel::create(tiny_spec("gene_self_attention").set("n_bins", 1), genes); });
  EXPECT_TRUE(contains(msg, "n_bins")) << msg;
  msg = invalid([&] { ConnectivityModel::create(tiny_spec("cross_attention").set("head_hidden", "64,a"), genes); });
  EXPECT_TRUE(contains(msg, "head_hidden")) << msg;

  // Data.
  auto model = ConnectivityModel::create(tiny_spec("cross_attention"), genes);
  RegionData bad = data;
  bad.n_genes = kGenes - 1;
  msg = invalid([&] { model->predict(bad, pairs, 8); });
  EXPECT_TRUE(contains(msg, "19 genes") && contains(msg, "20")) << msg;
  bad = data;
  bad.expression.pop_back();
  msg = invalid([&] { model->predict(bad, pairs, 8); });
  EXPECT_TRUE(contains(msg, "expression")) << msg;
  bad = data;
  bad.expression[kGenes + 2] = 1.5f;
  msg = invalid([&] { model->predict(bad, pairs, 8); });
  EXPECT_TRUE(contains(msg, "[0, 1]") && contains(msg, "region 2, gene 3")) << msg;
  bad.expression[kGenes + 2] = NAN;
  EXPECT_THROW(model->predict(bad, pairs, 8), std::invalid_argument);
  bad = data;
  bad.coords.pop_back();
  msg = invalid([&] { model->predict(bad, pairs, 8); });
  EXPECT_TRUE(contains(msg, "coords")) << msg;

  // Pairs.
  RegionPairs out_of_range = pairs;
  out_of_range.j[4] = kRegions;
  msg = invalid([&] { model->predict(data, out_of_range, 8); });
  EXPECT_TRUE(contains(msg, "pair 5") && contains(msg, "region 7")) << msg;
  RegionPairs ragged = pairs;
  ragged.i.pop_back();
  EXPECT_THROW(model->predict(data, ragged, 8), std::invalid_argument);
  RegionPairs no_target = pairs;
  no_target.target.pop_back();
  msg = invalid([&] { model->train(data, no_target, RegionPairs(), quick_training(1), {}); });
  EXPECT_TRUE(contains(msg, "target")) << msg;
  msg = invalid([&] { model->train(data, RegionPairs(), RegionPairs(), quick_training(1), {}); });
  EXPECT_TRUE(contains(msg, "no pairs")) << msg;
  msg = invalid([&] { model->train(data, pairs, RegionPairs(), Options().set("epoch", 3), {}); });
  EXPECT_TRUE(contains(msg, "epoch")) << msg;
  EXPECT_THROW(model->predict(data, pairs, 0), std::invalid_argument);
  int rows = 0, cols = 0;
  msg = invalid([&] { model->attention_map(data, 0, 1, 2, &rows, &cols); });
  EXPECT_TRUE(contains(msg, "layer 2")) << msg;
}
