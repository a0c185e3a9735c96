// The per-gene value head: zero at the start, each gene's output a function
// of that gene's own value and the cell's context alone (checked against a
// loop over genes and units), and a network with the setting trains it.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "decode/gene_value_head.hpp"
#include "models/composed_network.hpp"
#include "models/compositions.hpp"

using namespace exprflow;

namespace {

// sum_k w[g, k] * silu(x[b, g] * u[g, k] + e[g, k] + (A c[b] + a)[k]), one number at a time.
Tensor value_head_by_loops(const Tensor& x, const Tensor& context, const Tensor& u, const Tensor& e, const Tensor& w,
                           const Tensor& a_weight, const Tensor& a_bias) {
  const int64_t B = x.size(0), G = x.size(1), K = u.size(1), C = context.size(1);
  Tensor out = at::zeros({B, G});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = 0; g < G; ++g) {
      double sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        double shift = a_bias[k].item<double>();
        for (int64_t j = 0; j < C; ++j) shift += a_weight[k][j].item<double>() * context[b][j].item<double>();
        const double z = x[b][g].item<double>() * u[g][k].item<double>() + e[g][k].item<double>() + shift;
        sum += w[g][k].item<double>() * z / (1 + std::exp(-z));
      }
      out[b][g] = sum;
    }
  }
  return out;
}

}  // namespace

TEST(GeneValueHead, StartsAtZeroAndMatchesTheLoops) {
  at::manual_seed(11);
  const int64_t B = 3, G = 5, K = 4, C = 6;
  GeneValueHead head(G, C, K);
  const Tensor x = at::randn({B, G}), context = at::randn({B, C});
  const Tensor at_start = head->forward(x, context);
  EXPECT_EQ(at_start.sizes(), (std::vector<int64_t>{B, G}));
  EXPECT_TRUE(at::all(at_start == 0).item<bool>()) << "the output weights start at zero";

  auto params = head->named_parameters();
  {
    torch::NoGradGuard no_grad;
    params["output"].normal_();
  }
  const Tensor fast = head->forward(x, context);
  const Tensor slow = value_head_by_loops(x, context, params["input_scale"], params["input_shift"], params["output"],
                                          params["context.weight"], params["context.bias"]);
  EXPECT_TRUE(at::allclose(fast, slow, 1e-4, 1e-5)) << (fast - slow).abs().max().item<float>();

  // Gene 2's value moves gene 2 alone; the context moves every gene.
  Tensor moved = x.clone();
  moved.select(1, 2).add_(1.5);
  const Tensor changed = (head->forward(moved, context) - fast).abs().gt(1e-6);  // (B, G)
  EXPECT_TRUE(changed.select(1, 2).all().item<bool>());
  EXPECT_EQ(changed.sum().item<int64_t>(), B);
  EXPECT_TRUE((head->forward(x, context + 1) - fast).abs().gt(1e-6).all().item<bool>());

  EXPECT_THROW(head->forward(at::randn({B, G + 1}), context), std::invalid_argument);
  EXPECT_THROW(GeneValueHead(G, C, 0), std::invalid_argument);
}

// value_head = k adds the head to a composition's network, which starts as it
// would without it and learns through it; a negative width is refused by name.
TEST(GeneValueHead, IsASettingOfEveryGenerativeComposition) {
  EXPECT_EQ(composition_defaults("state_mlp").integer("value_head"), 0);
  const int64_t G = 12, B = 4;
  Options o;
  o.set("architecture", "rank_tokens").set("n_top", 3).set("token_dim", 8).set("n_layers", 1).set("n_heads", 2);
  o.set("value_head", 4);
  at::manual_seed(5);
  ComposedNetwork net(complete_spec(o), G, std::vector<CovariateSpec>{}, /*heads=*/1);
  EXPECT_EQ(net->named_parameters().find("value_head.output")->sizes(), (std::vector<int64_t>{G, 4}));
  const Tensor x = at::randn({B, G}), t = at::rand({B});
  EXPECT_TRUE(at::all(net->forward(x, t, {}).value == 0).item<bool>());
  net->forward(x, t, {}).value.sub(1).pow(2).mean().backward();
  const Tensor grad = net->named_parameters().find("value_head.output")->grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad.abs().sum().item<float>(), 0.0f);

  o.set("value_head", -1);
  try {
    ComposedNetwork refused(complete_spec(o), G, std::vector<CovariateSpec>{}, 1);
    FAIL() << "a negative value_head was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'value_head'"), std::string::npos) << e.what();
  }
}
