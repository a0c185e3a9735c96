// Tokenize / decode stages and the latent-token DiT that composes them.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "decode/mlp_decoder.hpp"
#include "models/latent_token_dit.hpp"
#include "models/registry.hpp"
#include "tokenize/latent_tokens.hpp"

using namespace exprflow;

namespace {

Options tiny_spec() {
  Options overrides;
  overrides.set("n_tokens", 4).set("token_dim", 16).set("n_layers", 2).set("n_heads", 2)
      .set("hidden", 32).set("timesteps", 100);
  return architecture_defaults("latent_tokens").merged(overrides, /*known_only=*/true);
}

}  // namespace

TEST(LatentTokenEncoder, Shapes) {
  at::manual_seed(1);
  LatentTokenEncoder enc(20, 32, 4, 16);
  EXPECT_EQ(enc->n_tokens(), 4);
  EXPECT_EQ(enc->token_dim(), 16);
  Tensor x = at::randn({5, 20});
  Tensor content = enc->content(x);
  Tensor tokens = enc->forward(x);
  EXPECT_EQ(content.sizes(), (std::vector<int64_t>{5, 4, 16}));
  EXPECT_EQ(tokens.sizes(), (std::vector<int64_t>{5, 4, 16}));
  // forward = content + one positional embedding shared by every cell.
  Tensor position = tokens - content;  // (5, 4, 16)
  for (int64_t b = 1; b < 5; ++b) EXPECT_TRUE(at::allclose(position[b], position[0], 1e-6, 1e-6));
  EXPECT_GT(position[0].abs().sum().item<float>(), 0.0f) << "positional embedding is zero";
  // The tokens depend on the input.
  EXPECT_FALSE(at::allclose(content[0], content[1]));
}

TEST(MlpDecoder, TwoOutputsZeroAtInit) {
  at::manual_seed(2);
  MlpDecoder dec(4 * 16, 32, 20);
  Tensor tokens = at::randn({3, 4, 16});
  GeneOutput out = dec->forward(tokens);
  EXPECT_EQ(out.value.sizes(), (std::vector<int64_t>{3, 20}));
  EXPECT_EQ(out.scale.sizes(), (std::vector<int64_t>{3, 20}));
  EXPECT_TRUE(at::all(out.value == 0).item<bool>()) << "value head not zero at init";
  EXPECT_TRUE(at::all(out.scale == 0).item<bool>()) << "scale head not zero at init";

  // After perturbing the weights the two heads are two different halves.
  torch::NoGradGuard no_grad;
  for (auto& p : dec->parameters()) p.normal_();
  GeneOutput moved = dec->forward(tokens);
  EXPECT_GT(moved.value.abs().sum().item<float>(), 0.0f);
  EXPECT_FALSE(at::allclose(moved.value, moved.scale));
}

TEST(LatentTokenDiT, ForwardAndEmbedShapes) {
  at::manual_seed(3);
  const Options spec = tiny_spec();
  const int64_t G = 20, L = 3, B = 6;
  std::shared_ptr<DenoisingNetworkImpl> net = build_network(spec, G, L);
  ASSERT_NE(net, nullptr);
  auto* dit = dynamic_cast<LatentTokenDiTImpl*>(net.get());
  ASSERT_NE(dit, nullptr) << "latent_tokens did not build a LatentTokenDiT";
  EXPECT_EQ(dit->blocks()->size(), 2u);
  EXPECT_EQ(net->null_condition(), L);

  Tensor x = at::randn({B, G});
  Tensor t = at::randint(0, 100, {B}, at::TensorOptions().dtype(at::kLong));
  Tensor cond = at::tensor(std::vector<int64_t>{0, 1, 2, 3, 0, 3});
  GeneOutput out = net->forward(x, t, cond);
  EXPECT_EQ(out.value.sizes(), (std::vector<int64_t>{B, G}));
  EXPECT_EQ(out.scale.sizes(), (std::vector<int64_t>{B, G}));
  // The decoder starts at zero: eps prediction 0 and mid-way variance.
  EXPECT_TRUE(at::all(out.value == 0).item<bool>());

  Tensor e = net->embed(x);
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{B, 16}));
  EXPECT_TRUE(at::isfinite(e).all().item<bool>());

  // One gradient step moves the output away from zero.
  std::vector<Tensor> params = net->parameters();
  Tensor loss = (net->forward(x, t, cond).value - at::ones({B, G})).pow(2).mean();
  loss.backward();
  {
    torch::NoGradGuard no_grad;
    for (Tensor& p : params) {
      if (p.grad().defined()) p.sub_(0.5 * p.grad());
    }
  }
  GeneOutput after = net->forward(x, t, cond);
  EXPECT_GT(after.value.abs().mean().item<float>(), 0.01f);
}

TEST(LatentTokenDiT, ParameterCountScalesWithSpec) {
  const Options spec = tiny_spec();
  auto count = [](const std::shared_ptr<DenoisingNetworkImpl>& n) {
    int64_t total = 0;
    for (const Tensor& p : n->parameters()) total += p.numel();
    return total;
  };
  Options deeper = spec;
  deeper.set("n_layers", 3);
  const int64_t two = count(build_network(spec, 20, 2)), three = count(build_network(deeper, 20, 2));
  // One DiT block of width 16, mlp_ratio 4: qkv 16*48+48, proj 16*16+16,
  // mlp 16*64+64 + 64*16+16, modulation 16*96+96.
  const int64_t block = (16 * 48 + 48) + (16 * 16 + 16) + (16 * 64 + 64) + (64 * 16 + 16) + (16 * 96 + 96);
  EXPECT_EQ(three - two, block);
}

TEST(Registry, KnownAndUnknownArchitectures) {
  const std::vector<std::string> names = registered_architectures();
  EXPECT_NE(std::find(names.begin(), names.end(), "latent_tokens"), names.end());
  const Options d = architecture_defaults("latent_tokens");
  EXPECT_EQ(d.text("architecture"), "latent_tokens");
  EXPECT_EQ(d.text("objective"), "ddpm");
  for (const char* key : {"n_tokens", "token_dim", "n_layers", "n_heads", "hidden", "mlp_ratio",
                          "timesteps", "schedule"}) {
    EXPECT_TRUE(d.has(key)) << "defaults lack " << key;
  }

  try {
    architecture_defaults("pathway_tokenz");
    FAIL() << "unknown architecture accepted";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("pathway_tokenz"), std::string::npos) << m;
    EXPECT_NE(m.find("'latent_tokens'"), std::string::npos) << "valid names not listed: " << m;
  }
  Options bad = tiny_spec();
  bad.set("architecture", "nope");
  try {
    build_network(bad, 10, 0);
    FAIL() << "unknown architecture built";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'latent_tokens'"), std::string::npos) << e.what();
  }
}
