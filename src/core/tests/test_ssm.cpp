// State-space backbone: the S4D layer's FFT convolution and the chunked and
// fused selective scans against their step-by-step recurrences (values and
// gradients), the Mamba mixer's causality, and the SSM backbone (identity at
// initialisation, mixing in both directions, trainable, setting checks).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/csrc/autograd/autograd.h>
#include <torch/optim/adam.h>

#include "backbone/s4d.hpp"
#include "backbone/selective_scan.hpp"
#include "backbone/ssm.hpp"

using namespace exprflow;

namespace {

void expect_close(const Tensor& a, const Tensor& b, double tol, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(at::allclose(a, b, tol, tol)) << what << ": max difference " << (a - b).abs().max().item<double>();
}

// Gradients of sum(y * w) with respect to inputs: a random linear functional
// of the output exercises every output element's backward path.
std::vector<Tensor> gradients(const Tensor& y, const Tensor& w, const std::vector<Tensor>& inputs) {
  return torch::autograd::grad({(y * w).sum()}, inputs);
}

// Expects an std::invalid_argument whose message contains every one of parts.
template <class F>
void expect_invalid(F make, const std::vector<std::string>& parts) {
  try {
    make();
    ADD_FAILURE() << "no std::invalid_argument thrown";
  } catch (const std::invalid_argument& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "'" << part << "' not in: " << e.what();
    }
  }
}

}  // namespace

TEST(S4d, KernelByHand) {
  // N = 2, S4D-Lin: one real mode A = -1/2. With dt = 0.1, C = 1:
  // K_l = 2 (exp(-0.05) - 1) / (-0.5) exp(-0.05 l).
  S4d layer(1, 2, "lin");
  {
    torch::NoGradGuard no_grad;
    auto p = layer->named_parameters();
    p["log_dt"].fill_(std::log(0.1));
    p["C_real"].fill_(1.0);
    p["C_imag"].fill_(0.0);
  }
  Tensor k = layer->kernel(4);
  ASSERT_EQ(k.sizes(), (std::vector<int64_t>{1, 4}));
  for (int l = 0; l < 4; ++l) {
    EXPECT_NEAR(k[0][l].item<double>(), 2 * (std::exp(-0.05) - 1) / -0.5 * std::exp(-0.05 * l), 1e-6) << "l = " << l;
  }
}

TEST(S4d, InitialisationsSetImaginaryParts) {
  const int64_t N = 8;
  S4d lin(2, N, "lin"), inv(2, N, "inv");
  Tensor lin_imag = lin->named_parameters()["A_imag"], inv_imag = inv->named_parameters()["A_imag"];
  ASSERT_EQ(lin_imag.sizes(), (std::vector<int64_t>{2, N / 2}));
  for (int n = 0; n < N / 2; ++n) {
    EXPECT_NEAR(lin_imag[1][n].item<double>(), M_PI * n, 1e-5);
    EXPECT_NEAR(inv_imag[1][n].item<double>(), N / M_PI * (double(N) / (2 * n + 1) - 1), 1e-4);
  }
  Tensor dt = lin->named_parameters()["log_dt"].exp();
  EXPECT_TRUE((dt >= 1e-3 - 1e-9).all().item<bool>() && (dt <= 1e-1 + 1e-9).all().item<bool>());
}

TEST(S4d, ConvolutionMatchesRecurrence) {
  for (const std::string init : {"lin", "inv"}) {
    at::manual_seed(11);
    S4d layer(3, 8, init);
    layer->to(at::kDouble);
    for (int64_t L : {1, 13, 32}) {  // 13: not a power of two
      Tensor u = at::randn({2, L, 3}, at::kDouble);
      expect_close(layer->forward(u), layer->reference_recurrence(u), 1e-9, init + " L = " + std::to_string(L));
    }
  }
  // Float32: the FFT route stays within 1e-4 of the recurrence.
  at::manual_seed(12);
  S4d layer(4, 16, "inv");
  Tensor u = at::randn({2, 29, 4});
  expect_close(layer->forward(u), layer->reference_recurrence(u), 1e-4, "float32");
}

TEST(S4d, GradientsMatchRecurrence) {
  for (const std::string init : {"lin", "inv"}) {
    at::manual_seed(13);
    S4d layer(3, 6, init);
    layer->to(at::kDouble);
    Tensor u = at::randn({2, 11, 3}, at::kDouble).requires_grad_(true);
    Tensor w = at::randn({2, 11, 3}, at::kDouble);
    std::vector<Tensor> inputs = layer->parameters();
    ASSERT_EQ(inputs.size(), 6u) << "log_dt, log_A_real, A_imag, C_real, C_imag, D";
    inputs.push_back(u);
    std::vector<Tensor> fast = gradients(layer->forward(u), w, inputs);
    std::vector<Tensor> ref = gradients(layer->reference_recurrence(u), w, inputs);
    for (size_t i = 0; i < inputs.size(); ++i) {
      EXPECT_GT(ref[i].abs().max().item<double>(), 0.0) << init << " input " << i;
      expect_close(fast[i], ref[i], 1e-8, init + " gradient of input " + std::to_string(i));
    }
  }
}

TEST(S4d, RejectsBadSettings) {
  expect_invalid([] { S4d(4, 7, "lin"); }, {"state_size", "7"});
  expect_invalid([] { S4d(4, 8, "legs"); }, {"init", "lin", "inv", "legs"});
  S4d layer(4, 8);
  EXPECT_THROW(layer->forward(at::randn({2, 5, 3})), std::invalid_argument);
}

namespace {

struct ScanInputs {
  Tensor u, delta, A, B, C, D;
  std::vector<Tensor> all() const { return {u, delta, A, B, C, D}; }
};

ScanInputs scan_inputs(int64_t batch, int64_t L, int64_t E, int64_t N) {
  auto opts = at::TensorOptions().dtype(at::kDouble);
  ScanInputs in;
  in.u = at::randn({batch, L, E}, opts).requires_grad_(true);
  in.delta = at::softplus(at::randn({batch, L, E}, opts) - 1).detach().requires_grad_(true);  // > 0
  in.A = (-at::rand({E, N}, opts) * N - 0.1).requires_grad_(true);                            // < 0
  in.B = at::randn({batch, L, N}, opts).requires_grad_(true);
  in.C = at::randn({batch, L, N}, opts).requires_grad_(true);
  in.D = at::randn({E}, opts).requires_grad_(true);
  return in;
}

}  // namespace

TEST(SelectiveScan, ReferenceByHand) {
  // One channel, one state entry, A = -1, delta = 1, B = C = 1, D = 0:
  // h_t = e^-1 h_{t-1} + u_t, y_t = h_t.
  Tensor u = at::tensor(std::vector<double>{1, 2, 0}).view({1, 3, 1});
  Tensor ones = at::ones({1, 3, 1}, at::kDouble);
  Tensor y = selective_scan_reference(u, ones, -at::ones({1, 1}, at::kDouble), ones, ones, at::zeros({1}, at::kDouble));
  const double e = std::exp(-1.0);
  EXPECT_NEAR(y[0][0][0].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(y[0][1][0].item<double>(), e + 2, 1e-12);
  EXPECT_NEAR(y[0][2][0].item<double>(), e * (e + 2), 1e-12);
}

TEST(SelectiveScan, ChunkedMatchesReference) {
  at::manual_seed(21);
  ScanInputs in = scan_inputs(2, 11, 3, 4);
  Tensor ref = selective_scan_reference(in.u, in.delta, in.A, in.B, in.C, in.D);
  Tensor w = at::randn_like(ref);
  std::vector<Tensor> ref_grads = gradients(ref, w, in.all());
  const std::vector<std::string> names = {"u", "delta", "A", "B", "C", "D"};
  for (int64_t chunk : {1, 3, 4, 11, 16}) {  // 3, 4 do not divide 11; 16 > L
    const std::string tag = "chunk " + std::to_string(chunk);
    Tensor y = selective_scan_chunked(in.u, in.delta, in.A, in.B, in.C, in.D, chunk);
    expect_close(y, ref, 1e-10, tag);
    std::vector<Tensor> grads = gradients(y, w, in.all());
    for (size_t i = 0; i < grads.size(); ++i) {
      ASSERT_TRUE(grads[i].defined()) << tag << " " << names[i];
      EXPECT_FALSE(grads[i].isnan().any().item<bool>()) << tag << " " << names[i];
      expect_close(grads[i], ref_grads[i], 1e-9, tag + " gradient of " + names[i]);
    }
  }
}

TEST(SelectiveScan, FusedMatchesReference) {
  // Values and every input's gradient in float64, on sequences of length 1
  // (no carried state) and longer, with one and several threads: the
  // gradients of A and D are sums over per-sequence partials.
  const std::vector<std::string> names = {"u", "delta", "A", "B", "C", "D"};
  const int threads = at::get_num_threads();
  for (int64_t L : {1, 11}) {
    for (int n_threads : {1, 2}) {
      at::set_num_threads(n_threads);
      at::manual_seed(24 + L);
      ScanInputs in = scan_inputs(3, L, 5, 4);
      const std::string tag = "L " + std::to_string(L) + ", " + std::to_string(n_threads) + " thread(s)";
      Tensor ref = selective_scan_reference(in.u, in.delta, in.A, in.B, in.C, in.D);
      Tensor w = at::randn_like(ref);
      std::vector<Tensor> ref_grads = gradients(ref, w, in.all());
      Tensor y = selective_scan_fused_cpu(in.u, in.delta, in.A, in.B, in.C, in.D);
      expect_close(y, ref, 1e-12, tag);
      std::vector<Tensor> grads = gradients(y, w, in.all());
      for (size_t i = 0; i < grads.size(); ++i) {
        ASSERT_TRUE(grads[i].defined()) << tag << " " << names[i];
        expect_close(grads[i], ref_grads[i], 1e-11, tag + " gradient of " + names[i]);
      }
    }
  }
  at::set_num_threads(threads);
}

TEST(SelectiveScan, FusedOnCpuChunkedElsewhere) {
  // The dispatcher: CPU float tensors take the fused loop (bit for bit), and
  // the two forms agree in float32 on inputs cut from the mixer's own layout
  // (B and C are column slices of one projection, not contiguous).
  at::manual_seed(25);
  ScanInputs in = scan_inputs(2, 9, 6, 3);
  Tensor u = in.u.detach().to(at::kFloat), delta = in.delta.detach().to(at::kFloat), A = in.A.detach().to(at::kFloat);
  Tensor D = in.D.detach().to(at::kFloat);
  Tensor BC = at::randn({2, 9, 8});  // (B, L, 2N + 2): B and C are slices of it
  Tensor B = BC.narrow(-1, 1, 3), C = BC.narrow(-1, 4, 3);
  ASSERT_FALSE(B.is_contiguous());
  EXPECT_TRUE(selective_scan_fused_cpu_applies(u, delta, A, B, C, D));
  EXPECT_FALSE(selective_scan_fused_cpu_applies(u, delta, A, B, C, D.to(at::kDouble)));
  Tensor y = selective_scan(u, delta, A, B, C, D);
  EXPECT_TRUE(at::equal(y, selective_scan_fused_cpu(u, delta, A, B, C, D)));
  expect_close(y, selective_scan_chunked(u, delta, A, B, C, D, 4), 1e-5, "fused against chunked, float32");
  EXPECT_THROW(selective_scan_fused_cpu(u, delta, A, B, C, D.to(at::kDouble)), std::invalid_argument);
  EXPECT_THROW(selective_scan_fused_cpu(u, delta, A.t(), B, C, D), std::invalid_argument);
}

TEST(SelectiveScan, Float32StrongDecay) {
  // Large steps and a strongly decaying A in one 20-step chunk: the log
  // decays sum to a few hundred below zero, so exp(S_t) underflows to 0,
  // while every S_t - S_s is formed before exponentiating and stays finite.
  at::manual_seed(22);
  ScanInputs in = scan_inputs(1, 20, 2, 3);
  Tensor u = in.u.detach().to(at::kFloat), delta = (in.delta.detach() * 3).to(at::kFloat);
  Tensor A = (in.A.detach() * 5).to(at::kFloat), B = in.B.detach().to(at::kFloat), C = in.C.detach().to(at::kFloat);
  Tensor D = in.D.detach().to(at::kFloat);
  const Tensor ref = selective_scan_reference(u, delta, A, B, C, D);
  for (const Tensor& y :
       {selective_scan_chunked(u, delta, A, B, C, D, 20), selective_scan_fused_cpu(u, delta, A, B, C, D)}) {
    EXPECT_TRUE(y.isfinite().all().item<bool>());
    expect_close(y, ref, 1e-4, "float32");
  }
}

TEST(SelectiveScan, RejectsBadArguments) {
  ScanInputs in = scan_inputs(1, 4, 2, 3);
  EXPECT_THROW(selective_scan(in.u, in.delta, in.A, in.B, in.C, in.D, 0), std::invalid_argument);
  EXPECT_THROW(selective_scan_chunked(in.u, in.delta, in.A, in.B, in.C, in.D, 0), std::invalid_argument);
  EXPECT_THROW(selective_scan(in.u, in.delta, in.A.t(), in.B, in.C, in.D), std::invalid_argument);
  EXPECT_THROW(selective_scan_reference(in.u, in.delta, in.A, in.B, in.C.narrow(1, 0, 3), in.D), std::invalid_argument);
}

TEST(MambaMixer, ShapeCausalityAndStepSizes) {
  at::manual_seed(23);
  MambaMixer mixer(8, 4);
  auto params = mixer->named_parameters();
  Tensor dt = at::softplus(params["dt_proj.bias"]);  // the step sizes at a zero input
  EXPECT_EQ(dt.size(0), 16);                         // E = 2 D
  EXPECT_TRUE((dt > 0.999e-3).all().item<bool>() && (dt < 1.001e-1).all().item<bool>());
  EXPECT_TRUE(at::allclose(-params["A_log"].exp()[3], -at::arange(1, 5, at::kFloat)));

  Tensor x = at::randn({2, 7, 8});
  Tensor y = mixer->forward(x);
  ASSERT_EQ(y.sizes(), x.sizes());
  Tensor x2 = x.clone();
  x2[0][4] += 1.0;
  Tensor y2 = mixer->forward(x2);
  EXPECT_TRUE(at::allclose(y.narrow(1, 0, 4), y2.narrow(1, 0, 4))) << "the mixer sees future tokens";
  EXPECT_FALSE(at::allclose(y[0][6], y2[0][6])) << "token 6 ignores token 4";
  EXPECT_TRUE(at::allclose(y[1], y2[1])) << "cells are mixed";
}

TEST(SsmBackbone, FreshBackboneIsFinalLayerNorm) {
  for (const std::string layer : {"s4d", "mamba"}) {
    at::manual_seed(31);
    SsmBackbone backbone(16, 2, layer, 8, 2.0, 0.1, "lin");
    backbone->eval();
    Tensor x = at::randn({3, 5, 16}) * 2 + 1, c = at::randn({3, 16});
    Tensor y = backbone->forward(x, c);
    // Every gate and the final modulation start at zero: only the LayerNorm acts.
    expect_close(y, at::layer_norm(x, {16}, {}, {}, 1e-6), 1e-5, layer);
  }
}

TEST(SsmBackbone, MixesBothDirectionsOnceGatesOpen) {
  const int64_t D = 8;
  for (const std::string layer : {"s4d", "mamba"}) {
    at::manual_seed(32);
    SsmBackbone backbone(D, 2, layer, 4, 2.0, 0.0, "inv");
    int found = 0;
    {
      torch::NoGradGuard no_grad;
      for (auto& p : backbone->parameters()) {
        if (p.size(0) == 6 * D) {  // the blocks' modulation layers, by shape
          p.normal_(0.0, 0.3);
          ++found;
        }
      }
    }
    ASSERT_EQ(found, 4) << layer << ": weight and bias of two modulation layers";
    Tensor x = at::randn({2, 6, D}), c = at::randn({2, D});
    Tensor y = backbone->forward(x, c);
    ASSERT_EQ(y.sizes(), x.sizes());
    EXPECT_FALSE(at::allclose(y, at::layer_norm(x, {D}, {}, {}, 1e-6), 1e-4, 1e-4)) << layer << ": still the identity";

    // Not a constant shift: the LayerNorms would remove it.
    Tensor last = x.clone(), first = x.clone();
    last[0][5] += at::randn({D});
    first[0][0] += at::randn({D});
    Tensor y_last = backbone->forward(last, c), y_first = backbone->forward(first, c);
    EXPECT_FALSE(at::allclose(y[0][0], y_last[0][0], 1e-6, 1e-6)) << layer << ": token 0 ignores the last token";
    EXPECT_FALSE(at::allclose(y[0][5], y_first[0][5], 1e-6, 1e-6)) << layer << ": the last token ignores token 0";
    EXPECT_TRUE(at::allclose(y[1], y_last[1])) << layer << ": cells are mixed";
  }
}

TEST(SsmBackbone, FitsTinyRegression) {
  // Target: the reversed sequence (normalised), which needs token mixing in
  // both directions; c carries a per-cell offset.
  const int64_t B = 8, T = 6, D = 16;
  for (const std::string layer : {"s4d", "mamba"}) {
    at::manual_seed(33);
    SsmBackbone backbone(D, 2, layer, 8, 2.0, 0.0, "lin");
    Tensor x = at::randn({B, T, D}), c = at::randn({B, D});
    Tensor target = at::layer_norm(x.flip(1), {D}, {}, {}, 1e-6) + 0.5 * c.unsqueeze(1);
    torch::optim::Adam optimiser(backbone->parameters(), torch::optim::AdamOptions(1e-2));
    double first = 0, last = 0;
    for (int step = 0; step < 100; ++step) {
      optimiser.zero_grad();
      Tensor loss = (backbone->forward(x, c) - target).pow(2).mean();
      loss.backward();
      optimiser.step();
      if (step == 0) first = loss.item<double>();
      last = loss.item<double>();
    }
    EXPECT_LT(last, 0.05 * first) << layer << ": loss " << first << " -> " << last;
  }
}

TEST(SsmBackbone, RejectsBadSettings) {
  expect_invalid([] { SsmBackbone(8, 2, "transformer", 8, 2.0, 0.0, "lin"); },
                 {"'layer'", "\"s4d\"", "\"mamba\"", "transformer"});
  expect_invalid([] { SsmBackbone(8, 0, "s4d", 8, 2.0, 0.0, "hippo"); }, {"'init'", "\"lin\"", "\"inv\"", "hippo"});
  expect_invalid([] { SsmBackbone(8, 1, "s4d", 5, 2.0, 0.0, "lin"); }, {"state_size"});
  expect_invalid([] { SsmBackbone(8, 1, "mamba", 8, 2.0, 1.0, "lin"); }, {"dropout"});
  EXPECT_NO_THROW(SsmBackbone(8, 1, "mamba", 5, 2.0, 0.0, "inv"));  // any state size for mamba
}
