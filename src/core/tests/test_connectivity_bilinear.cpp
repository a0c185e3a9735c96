// The bilinear connectivity baseline: its formula by hand, the statistics it
// fits from the training regions only, its ridge penalty, recovery of a
// planted low-rank bilinear target through the shared trainer (early stopping
// on validation pairs), and save / load.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "connectivity/bilinear_network.hpp"
#include "connectivity/connectivity_model.hpp"
#include "exprflow/connectivity.hpp"
#include "test_connectivity_helpers.hpp"

using namespace exprflow;

namespace {

// Regions with uniform expression and a planted target
// f(i, j) = 0.3 + z_i' W z_j, z = x - (column means), W = A B' + B A' of rank <= 4.
struct Planted {
  RegionData data;
  std::vector<std::vector<double>> target;  // regions x regions
};

Planted planted(int regions, int genes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::normal_distribution<double> normal(0.0, 1.0);
  Planted p;
  p.data.n_regions = regions;
  p.data.n_genes = genes;
  for (int k = 0; k < regions * genes; ++k) p.data.expression.push_back(unit(rng));
  std::vector<double> mean(genes, 0.0), a(genes * 2), b(genes * 2);
  for (int r = 0; r < regions; ++r) {
    for (int g = 0; g < genes; ++g) mean[g] += p.data.expression[r * genes + g] / regions;
  }
  for (double& v : a) v = normal(rng);
  for (double& v : b) v = normal(rng);
  p.target.assign(regions, std::vector<double>(regions, 0.0));
  for (int i = 0; i < regions; ++i) {
    for (int j = 0; j < regions; ++j) {
      double f = 0.3;
      for (int k = 0; k < 2; ++k) {
        double zi_a = 0, zi_b = 0, zj_a = 0, zj_b = 0;
        for (int g = 0; g < genes; ++g) {
          const double zi = p.data.expression[i * genes + g] - mean[g], zj = p.data.expression[j * genes + g] - mean[g];
          zi_a += zi * a[g * 2 + k];
          zi_b += zi * b[g * 2 + k];
          zj_a += zj * a[g * 2 + k];
          zj_b += zj * b[g * 2 + k];
        }
        f += zi_a * zj_b + zi_b * zj_a;
      }
      p.target[i][j] = f;
    }
  }
  return p;
}

// Ordered pairs i != j with both regions in `a` or, with `b`, one in a and one in b.
RegionPairs pairs_of(const Planted& p, const std::set<int>& a, const std::set<int>& b = {}) {
  RegionPairs out;
  for (int i = 0; i < p.data.n_regions; ++i) {
    for (int j = 0; j < p.data.n_regions; ++j) {
      if (i == j) continue;
      const bool keep = b.empty() ? (a.count(i) && a.count(j))
                                  : ((a.count(i) && b.count(j)) || (b.count(i) && a.count(j)) ||
                                     (b.count(i) && b.count(j)));
      if (!keep) continue;
      out.i.push_back(i);
      out.j.push_back(j);
      out.target.push_back(static_cast<float>(p.target[i][j]));
    }
  }
  return out;
}

std::set<int> range_set(int from, int to) {
  std::set<int> s;
  for (int r = from; r < to; ++r) s.insert(r);
  return s;
}

double pearson(const std::vector<float>& x, const std::vector<float>& y) {
  double mx = 0, my = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    mx += x[k] / x.size();
    my += y[k] / y.size();
  }
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    sxy += (x[k] - mx) * (y[k] - my);
    sxx += (x[k] - mx) * (x[k] - mx);
    syy += (y[k] - my) * (y[k] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

double mean_squared(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) s += (a[k] - b[k]) * double(a[k] - b[k]);
  return s / a.size();
}

// A complete spec (the network is also built directly, without the model's defaults).
Options bilinear_spec(int rank, bool symmetric) {
  Options o = ConnectivityModel::default_spec("bilinear");
  o.set("rank", rank).set("symmetric", symmetric ? 1.0 : 0.0).set("seed", 5);
  return o;
}

// A batch of every ordered pair over a region table, both ways: through the
// table (expression + i, j) and through per-pair rows (x_i, x_j).
PairBatch table_batch(const Tensor& x, const RegionPairs& pairs) {
  PairBatch batch;
  batch.expression = x;
  batch.i = at::tensor(std::vector<int64_t>(pairs.i.begin(), pairs.i.end()));
  batch.j = at::tensor(std::vector<int64_t>(pairs.j.begin(), pairs.j.end()));
  return batch;
}

}  // namespace

TEST(ConnectivityBilinear, DefaultsAndTrainingDefaults) {
  Options spec = ConnectivityModel::default_spec("bilinear");
  EXPECT_EQ(spec.integer("rank"), 8);
  EXPECT_DOUBLE_EQ(spec.number("lambda"), 1e-3);
  EXPECT_TRUE(spec.flag("symmetric", false));
  EXPECT_FALSE(spec.has("d_model")) << "no attention settings";
  // Full-batch Adam without decay, clipping or averaging; early stopping kept.
  Options train = ConnectivityModel::default_train_options("bilinear");
  EXPECT_EQ(train.integer("epochs"), 1500);
  EXPECT_EQ(train.integer("batch_size"), 16384);
  EXPECT_DOUBLE_EQ(train.number("learning_rate"), 0.01);
  EXPECT_DOUBLE_EQ(train.number("weight_decay"), 0.0);
  EXPECT_DOUBLE_EQ(train.number("grad_clip"), 0.0);
  EXPECT_DOUBLE_EQ(train.number("ema_decay"), 0.0);
  EXPECT_FALSE(train.flag("cosine", true));
  EXPECT_EQ(train.integer("patience"), 1500) << "the best epoch of the whole run";
  EXPECT_THROW(ConnectivityModel::create(bilinear_spec(4, true).set("lambda", -1.0),
                                         testing_connectivity::synthetic_embedding(6, 1, 1)),
               std::invalid_argument);
  EXPECT_THROW(ConnectivityModel::create(bilinear_spec(0, true), testing_connectivity::synthetic_embedding(6, 1, 1)),
               std::invalid_argument);
}

TEST(ConnectivityBilinear, ScalingComesFromTheTrainingRegionsOnly) {
  const Planted p = planted(8, 5, 1);
  Tensor x = at::tensor(p.data.expression).view({8, 5});  // (R, G)
  const RegionPairs train = pairs_of(p, range_set(0, 5));  // regions 0..4
  at::manual_seed(1);
  BilinearNetwork net(bilinear_spec(3, true), 5);
  net->fit_scaling(table_batch(x, train), at::tensor(train.target));
  auto buffers = net->named_buffers();
  Tensor rows = x.slice(0, 0, 5).to(at::kDouble);                  // (5, G)
  Tensor center = rows.mean(0);                                    // (G,)
  const double spread = (rows - center).flatten().std().item<double>();  // n - 1, as R's sd()
  EXPECT_TRUE(at::allclose(buffers["center"], center.to(at::kFloat), 1e-6, 1e-6));
  EXPECT_NEAR(buffers["spread"].item<double>(), spread, 1e-6);
  Tensor y = at::tensor(train.target).to(at::kDouble);
  EXPECT_NEAR(buffers["target_mean"].item<double>(), y.mean().item<double>(), 1e-6);
  EXPECT_NEAR(buffers["target_sd"].item<double>(), y.std().item<double>(), 1e-6);
  // Constant targets or expression: no spread, left unscaled rather than divided by 0.
  net->fit_scaling(table_batch(at::full({8, 5}, 0.5f), train), at::full({20}, 2.0f));
  EXPECT_EQ(net->named_buffers()["spread"].item<float>(), 1.0f);
  EXPECT_EQ(net->named_buffers()["target_sd"].item<float>(), 1.0f);
}

TEST(ConnectivityBilinear, ForwardIsTheBilinearFormByHand) {
  const Planted p = planted(7, 6, 2);
  Tensor x = at::tensor(p.data.expression).view({7, 6});  // (R, G)
  const RegionPairs all = pairs_of(p, range_set(0, 7));
  for (bool symmetric : {true, false}) {
    SCOPED_TRACE(symmetric ? "symmetric" : "asymmetric");
    at::manual_seed(3);
    BilinearNetwork net(bilinear_spec(2, symmetric), 6);
    net->fit_scaling(table_batch(x, all), at::tensor(all.target));
    {
      torch::NoGradGuard no_grad;
      net->named_parameters()["offset"].fill_(0.25);  // a non-zero c
    }
    auto params = net->named_parameters();
    auto buffers = net->named_buffers();
    Tensor U = params["u"], V = params["v"];                                    // (G, 2)
    Tensor W = symmetric ? at::matmul(U, V.t()) + at::matmul(V, U.t()) : at::matmul(U, V.t());  // (G, G)
    Tensor z = (x - buffers["center"]) / buffers["spread"];                      // (R, G)
    PairBatch batch = table_batch(x, all);
    torch::NoGradGuard no_grad;
    Tensor y = net->forward(batch);  // (P,)
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{static_cast<int64_t>(all.i.size())}));
    double largest_asymmetry = 0;
    for (size_t k = 0; k < all.i.size(); ++k) {
      Tensor zi = z[all.i[k]], zj = z[all.j[k]];
      const double expected = buffers["target_mean"].item<double>() +
                              buffers["target_sd"].item<double>() *
                                  (0.25 + at::dot(zi, at::matmul(W, zj)).item<double>());
      ASSERT_NEAR(y[k].item<double>(), expected, 1e-4 * (1 + std::fabs(expected))) << "pair " << k;
      const double reverse = at::dot(zj, at::matmul(W, zi)).item<double>();
      largest_asymmetry = std::max(largest_asymmetry, std::fabs(reverse - at::dot(zi, at::matmul(W, zj)).item<double>()));
    }
    if (symmetric) {
      EXPECT_LT(largest_asymmetry, 1e-5);
    } else {
      EXPECT_GT(largest_asymmetry, 1e-4) << "U V' happens to be symmetric";
    }
    // Per-pair rows give the same as the region table.
    PairBatch rows;
    rows.x_i = x.index_select(0, batch.i);
    rows.x_j = x.index_select(0, batch.j);
    EXPECT_TRUE(at::allclose(net->forward(rows), y, 1e-5, 1e-6));
    EXPECT_THROW(net->attention_map(batch, 0), std::invalid_argument);
  }
}

TEST(ConnectivityBilinear, PenaltyIsRidgeOnTheStandardisedScale) {
  at::manual_seed(4);
  Options spec = bilinear_spec(3, true);
  spec.set("lambda", 0.5);
  BilinearNetwork net(spec, 4);
  Tensor x = at::rand({5, 4});
  RegionPairs pairs;
  pairs.i = {0, 1, 2, 3};
  pairs.j = {1, 2, 3, 4};
  const std::vector<float> target{1.0f, 3.0f, 5.0f, 7.0f};  // sd^2 = 20 / 3
  net->fit_scaling(table_batch(x, pairs), at::tensor(target));
  auto params = net->named_parameters();
  const double norm = (params["u"].pow(2).sum() + params["v"].pow(2).sum()).item<double>();
  EXPECT_NEAR(net->penalty().item<double>(), 0.5 * (20.0 / 3.0) * norm, 1e-5 * norm);
  // It reaches U and V.
  net->penalty().backward();
  EXPECT_TRUE(at::allclose(params["u"].grad(), params["u"] * (2 * 0.5 * 20.0 / 3.0), 1e-4, 1e-6));
  spec.set("lambda", 0.0);
  EXPECT_EQ(BilinearNetwork(spec, 4)->penalty().item<double>(), 0.0);
}

TEST(ConnectivityBilinear, LearnsAPlantedBilinearFormAndBeatsTheMean) {
  // 30 regions: 20 train, 4 validate (early stopping), 6 are never seen in
  // training and are scored. The scaling is fitted from the 20 training regions.
  const Planted p = planted(30, 12, 3);
  const RegionPairs train = pairs_of(p, range_set(0, 20));
  const RegionPairs validation = pairs_of(p, range_set(0, 20), range_set(20, 24));
  const RegionPairs test = pairs_of(p, range_set(0, 24), range_set(24, 30));
  auto model = ConnectivityModel::create(bilinear_spec(4, true), testing_connectivity::synthetic_embedding(12, 1, 1));
  EXPECT_EQ(model->parameter_count(), 2 * 12 * 4 + 1);
  const TrainReport report = model->train(p.data, train, validation, Options(), {});
  EXPECT_EQ(report.steps, static_cast<long>(report.history.size())) << "one full-batch step per epoch";
  EXPECT_EQ(report.history.size(), 1500u) << "patience = epochs: the whole run";
  const std::vector<float> pred = model->predict(p.data, test, 256);
  // The trivial predictor: the mean training target for every pair.
  double mean = 0;
  for (float t : train.target) mean += t / train.target.size();
  const double trivial = mean_squared(std::vector<float>(test.target.size(), static_cast<float>(mean)), test.target);
  const double mse = mean_squared(pred, test.target);
  EXPECT_GT(pearson(pred, test.target), 0.95);
  EXPECT_LT(mse, 0.2 * trivial) << "MSE " << mse << " vs the mean's " << trivial;
  // The run ends on its best validation epoch's weights.
  const double best = report.history[report.best_epoch - 1].validation_loss;
  EXPECT_NEAR(mean_squared(model->predict(p.data, validation, 256), validation.target), best, 1e-4 * (1 + best));
  // Symmetric by construction: f(i, j) = f(j, i).
  RegionPairs swapped = test;
  std::swap(swapped.i, swapped.j);
  const std::vector<float> back = model->predict(p.data, swapped, 256);
  for (size_t k = 0; k < pred.size(); ++k) ASSERT_NEAR(pred[k], back[k], 1e-4 * (1 + std::fabs(pred[k])));
}

TEST(ConnectivityBilinear, EarlyStopsOnValidationPairs) {
  // Validation targets it cannot fit (the negated target): the validation loss
  // stops improving and patience ends the run long before 1500 epochs.
  const Planted p = planted(16, 8, 5);
  const RegionPairs train = pairs_of(p, range_set(0, 12));
  RegionPairs validation = pairs_of(p, range_set(0, 12), range_set(12, 16));
  for (float& t : validation.target) t = -t;
  auto model = ConnectivityModel::create(bilinear_spec(2, true), testing_connectivity::synthetic_embedding(8, 1, 1));
  Options options;
  options.set("patience", 20);
  const TrainReport report = model->train(p.data, train, validation, options, {});
  EXPECT_TRUE(report.stopped_early);
  EXPECT_EQ(report.history.size(), static_cast<size_t>(report.best_epoch + 20));
}

TEST(ConnectivityBilinear, SaveLoadKeepsWeightsAndScaling) {
  const Planted p = planted(12, 6, 6);
  const RegionPairs train = pairs_of(p, range_set(0, 9));
  const RegionPairs all = pairs_of(p, range_set(0, 12));
  auto model = ConnectivityModel::create(bilinear_spec(3, false), testing_connectivity::synthetic_embedding(6, 1, 1));
  Options options;
  options.set("epochs", 30);
  model->train(p.data, train, RegionPairs(), options, {});
  const std::vector<float> before = model->predict(p.data, all, 64);
  // Fine-tuning on other regions keeps the scaling of the first training.
  auto& pair_model = dynamic_cast<PairConnectivityModel&>(*model);
  const Tensor center = pair_model.ema_network().named_buffers()["center"].clone();
  model->train(p.data, pairs_of(p, range_set(6, 12)), RegionPairs(), options.set("epochs", 1), {});
  EXPECT_TRUE(at::equal(pair_model.ema_network().named_buffers()["center"], center));
  EXPECT_TRUE(at::equal(pair_model.network().named_buffers()["center"], center));
  const std::vector<float> tuned = model->predict(p.data, all, 64);
  EXPECT_NE(tuned, before);

  const std::string path = ::testing::TempDir() + "exprflow_conn_bilinear.pt";
  model->save(path);
  auto loaded = ConnectivityModel::load(path);
  EXPECT_EQ(loaded->predict(p.data, all, 64), tuned);
  EXPECT_EQ(loaded->spec().to_json(), model->spec().to_json());
  EXPECT_EQ(loaded->history().size(), 31u);
  int rows = 0, cols = 0;
  try {
    loaded->attention_map(p.data, 0, 1, 0, &rows, &cols);
    ADD_FAILURE() << "attention_map did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no attention"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}
