// Matrix products in bfloat16 (runtime/matmul_precision.hpp, runtime/linear.hpp):
// the setting, the Linear layer and attention under it against float, and a
// training run that asks for it.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "backbone/attention.hpp"
#include "exprflow/api.hpp"
#include "runtime/linear.hpp"
#include "runtime/matmul_precision.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

using namespace exprflow;

namespace {

// Largest |a - b| over the largest |b|.
double relative_error(const Tensor& a, const Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

}  // namespace

TEST(MatmulPrecision, ParsesTwoNamesAndNamesTheSettingOtherwise) {
  EXPECT_EQ(parse_matmul_precision("float32"), MatmulPrecision::float32);
  EXPECT_EQ(parse_matmul_precision("bfloat16"), MatmulPrecision::bfloat16);
  EXPECT_EQ(matmul_precision_name(MatmulPrecision::bfloat16), "bfloat16");
  try {
    parse_matmul_precision("half", "vae_precision");
    FAIL() << "\"half\" was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("vae_precision"), std::string::npos) << e.what();
  }
  Options options;
  options.set("precision", "bf16");
  EXPECT_THROW(TrainerSettings::from(options), std::invalid_argument);
  options.set("precision", "bfloat16");
  EXPECT_EQ(TrainerSettings::from(options).precision, MatmulPrecision::bfloat16);
  EXPECT_EQ(TrainerSettings::from(Options()).precision, MatmulPrecision::float32);
  // Sampling options read the same key.
  EXPECT_EQ(matmul_precision_of(Options()), MatmulPrecision::float32);
  EXPECT_EQ(matmul_precision_of(Options(), MatmulPrecision::bfloat16), MatmulPrecision::bfloat16);
  EXPECT_EQ(matmul_precision_of(options), MatmulPrecision::bfloat16);
  EXPECT_THROW(matmul_precision_of(Options().set("precision", "half")), std::invalid_argument);
}

TEST(MatmulPrecision, GuardsNestAndRestore) {
  EXPECT_EQ(matmul_precision(), MatmulPrecision::float32);
  {
    MatmulPrecisionGuard outer(MatmulPrecision::bfloat16);
    EXPECT_EQ(matmul_precision(), MatmulPrecision::bfloat16);
    {
      MatmulPrecisionGuard inner(MatmulPrecision::float32);
      EXPECT_EQ(matmul_precision(), MatmulPrecision::float32);
    }
    EXPECT_EQ(matmul_precision(), MatmulPrecision::bfloat16);
  }
  EXPECT_EQ(matmul_precision(), MatmulPrecision::float32);
}

TEST(MatmulPrecision, BfloatGuardsGiveOpenBlasThreadsToLibTorch) {
  const int torch_before = at::get_num_threads();
  set_torch_threads(1);  // the package's share: LibTorch one thread, OpenBLAS the cores
  const int blas = runtime_info().blas_threads;
  if (blas <= 0) GTEST_SKIP() << "the BLAS is not OpenBLAS: thread shares are left alone";
  {
    MatmulPrecisionGuard outer(MatmulPrecision::bfloat16);
    EXPECT_EQ(at::get_num_threads(), std::max(1, blas));
    EXPECT_EQ(runtime_info().blas_threads, 1);
    {
      MatmulPrecisionGuard inner(MatmulPrecision::bfloat16);  // nested: shares stay swapped once
      EXPECT_EQ(runtime_info().blas_threads, 1);
    }
    EXPECT_EQ(at::get_num_threads(), std::max(1, blas)) << "an inner guard restored the shares early";
    MatmulPrecisionGuard float32(MatmulPrecision::float32);  // float guards leave shares alone
    EXPECT_EQ(runtime_info().blas_threads, 1);
  }
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(runtime_info().blas_threads, blas);
  set_torch_threads(torch_before);
}

TEST(MatmulPrecision, LinearKeepsLibTorchsParametersAndFloatResult) {
  at::manual_seed(3);
  Linear layer(128, 128);
  const auto names = layer->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias"})) << "model files and LoRA read these names";
  EXPECT_NE(dynamic_cast<torch::nn::LinearImpl*>(layer.ptr().get()), nullptr) << "LoRA finds layers as LibTorch's";

  const Tensor x = at::randn({32, 16, 128});         // (B, T, in): 8.4M multiply-adds, above the threshold
  const Tensor upstream = at::randn({32, 16, 128});  // (B, T, out)

  // The float run and its gradients.
  const Tensor x32 = x.clone().requires_grad_();
  const Tensor y32 = layer->forward(x32);  // (B, T, out)
  (y32 * upstream).sum().backward();
  const Tensor dx32 = x32.grad().clone(), dw32 = layer->weight.grad().clone(), db32 = layer->bias.grad().clone();
  layer->zero_grad();

  const Tensor x16 = x.clone().requires_grad_();
  Tensor y16;
  {
    MatmulPrecisionGuard bfloat16(MatmulPrecision::bfloat16);
    y16 = layer->forward(x16);  // (B, T, out)
  }
  (y16 * upstream).sum().backward();  // outside the guard: autograd keeps the forward's types
  EXPECT_EQ(y16.scalar_type(), at::kFloat);
  EXPECT_EQ(x16.grad().scalar_type(), at::kFloat);
  EXPECT_EQ(layer->weight.grad().scalar_type(), at::kFloat);
  // bfloat16 keeps 8 significant bits: sums of 128 products agree to about 1%,
  // and they are not the float products.
  EXPECT_LT(relative_error(y16, y32), 2e-2);
  EXPECT_GT(relative_error(y16, y32), 1e-5) << "the product did not run in bfloat16";
  EXPECT_LT(relative_error(x16.grad(), dx32), 2e-2);
  EXPECT_LT(relative_error(layer->weight.grad(), dw32), 2e-2);
  EXPECT_TRUE(at::allclose(layer->bias.grad(), db32, 1e-5, 1e-5)) << "the bias is added in float";

  // Other types, and products too small to gain from the casts, stay exact under the guard.
  Linear small(8, 4);
  const Tensor xs = at::randn({5, 8});
  const Tensor small_exact = small->forward(xs);
  layer->to(at::kDouble);
  const Tensor xd = x.to(at::kDouble);
  const Tensor double_exact = layer->forward(xd);
  MatmulPrecisionGuard bfloat16(MatmulPrecision::bfloat16);
  EXPECT_TRUE(at::equal(small->forward(xs), small_exact));
  EXPECT_TRUE(at::equal(layer->forward(xd), double_exact));
}

TEST(MatmulPrecision, LinearCastsItsWeightOncePerChangeWhileNoGradientIsRecorded) {
  // Sampling runs the same weights many times without gradients: the layer
  // reuses one bfloat16 copy until the weight changes in place (an
  // optimiser step, loading EMA weights) or is replaced.
  at::manual_seed(4);
  Linear layer(256, 256);
  const Tensor x = at::randn({128, 256});  // (B, in): 8.4M multiply-adds, above the threshold
  MatmulPrecisionGuard bfloat16(MatmulPrecision::bfloat16);
  torch::NoGradGuard no_grad;
  const Tensor first = layer->forward(x);
  EXPECT_TRUE(at::equal(layer->forward(x), first));
  // What a fresh cast gives: the cached copy must equal it after each change.
  const auto fresh = [&] {
    return at::linear(x.to(at::kBFloat16), layer->weight.to(at::kBFloat16)).to(at::kFloat) + layer->bias;
  };
  EXPECT_TRUE(at::equal(first, fresh()));
  layer->weight.mul_(-1);  // in place: the version counter moves
  const Tensor negated = layer->forward(x);
  EXPECT_TRUE(at::equal(negated, fresh()));
  EXPECT_FALSE(at::equal(negated, first)) << "a stale bfloat16 weight was used";
  layer->weight.set_data(at::randn({256, 256}));  // replaced: other storage
  EXPECT_TRUE(at::equal(layer->forward(x), fresh()));
  {
    // Recording gradients: the cast is part of the graph, so the weight gets its gradient.
    torch::AutoGradMode grad(true);
    layer->forward(x).sum().backward();
    ASSERT_TRUE(layer->weight.grad().defined());
    EXPECT_GT(layer->weight.grad().abs().sum().item<double>(), 0);
  }
}

TEST(MatmulPrecision, AttentionInBfloat16AgreesWithTheFloatReference) {
  at::manual_seed(5);
  const Tensor q = at::randn({8, 4, 128, 32}), k = at::randn({8, 4, 128, 32}), v = at::randn({8, 4, 128, 32});  // (B, H, T, Dh)
  const Tensor reference = attention_reference(q, k, v, Tensor());                                             // (B, H, T, Dh)
  MatmulPrecisionGuard bfloat16(MatmulPrecision::bfloat16);
  const Tensor out = attention(q, k, v, Tensor());  // (B, H, T, Dh)
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_LT(relative_error(out, reference), 3e-2);
  const Tensor product = matmul_at_precision(q, k.transpose(-2, -1));  // (B, H, T, T): 16.8M multiply-adds
  EXPECT_GT(relative_error(product, at::matmul(q, k.transpose(-2, -1))), 1e-5) << "not a bfloat16 product";
}

namespace {

// y = X W + noise through a Linear layer wide enough for bfloat16 products
// (32 x 128 x 1024 multiply-adds a step), the report of a run at `precision`.
TrainReport fit_regression(MatmulPrecision precision, MatmulPrecision* seen) {
  at::manual_seed(11);
  const Tensor x = at::randn({600, 128});                                                       // (N, 128)
  const Tensor y = at::matmul(x, at::randn({128, 1024}) / 11.3) + 0.01 * at::randn({600, 1024});  // (N, 1024)
  Linear model(128, 1024), ema(128, 1024);
  TrainingTask task;
  task.module = model.ptr().get();
  task.ema = ema.ptr().get();
  const auto rows = [](const std::vector<int>& cells) {
    return at::tensor(std::vector<int64_t>(cells.begin(), cells.end()));
  };
  task.batch_loss = [&](const std::vector<int>& cells, at::Generator&) {
    *seen = matmul_precision();
    const Tensor idx = rows(cells);
    return (model->forward(x.index_select(0, idx)) - y.index_select(0, idx)).pow(2).mean();
  };
  task.validation_loss = [&](const std::vector<int>& cells) {
    torch::NoGradGuard no_grad;
    const Tensor idx = rows(cells);
    return (model->forward(x.index_select(0, idx)) - y.index_select(0, idx)).pow(2).mean().item<double>();
  };
  std::vector<int> train, validation;
  for (int i = 0; i < 600; ++i) (i < 500 ? train : validation).push_back(i);
  TrainerSettings s;
  s.epochs = 20;
  s.batch_size = 32;
  s.learning_rate = 0.05;
  s.weight_decay = 0;
  s.patience = 0;
  s.precision = precision;
  return run_training(task, train, validation, s, TrainCallbacks());
}

}  // namespace

TEST(MatmulPrecision, TrainingRunsItsStepsAtTheRunsPrecision) {
  MatmulPrecision seen = MatmulPrecision::float32;
  const TrainReport bf16 = fit_regression(MatmulPrecision::bfloat16, &seen);
  EXPECT_EQ(seen, MatmulPrecision::bfloat16) << "the loss ran outside the run's precision";
  EXPECT_EQ(matmul_precision(), MatmulPrecision::float32) << "the run did not restore the thread's precision";
  const TrainReport f32 = fit_regression(MatmulPrecision::float32, &seen);
  EXPECT_EQ(seen, MatmulPrecision::float32);
  // Both fit the noise floor's neighbourhood; bfloat16 products cost digits, not the fit.
  EXPECT_LT(f32.history.back().validation_loss, 0.01 * f32.history.front().validation_loss);
  EXPECT_LT(bf16.history.back().validation_loss, 0.01 * bf16.history.front().validation_loss);
  EXPECT_NE(bf16.history.back().validation_loss, f32.history.back().validation_loss);
}

TEST(MatmulPrecision, CheckpointsKeepTheRunsPrecision) {
  TrainerSettings s;
  Json stored = trainer_settings_json(s);
  EXPECT_EQ(stored.at("precision"), "float32");
  stored.erase("precision");  // a checkpoint written before the setting existed
  EXPECT_NO_THROW(check_same_settings(stored, s)) << "such runs trained in float32";
  s.precision = MatmulPrecision::bfloat16;
  try {
    check_same_settings(stored, s);
    FAIL() << "a float32 run resumed in bfloat16";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("precision"), std::string::npos) << e.what();
  }
}
