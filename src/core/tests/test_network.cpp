// Tokenize / backbone / decode stages, their tables, and the networks the
// composition table assembles from them.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "backbone/dit.hpp"
#include "backbone/residual_mlp.hpp"
#include "decode/linear_decoder.hpp"
#include "decode/mlp_decoder.hpp"
#include "models/composed_network.hpp"
#include "models/compositions.hpp"
#include "models/stages.hpp"
#include "tokenize/latent_tokens.hpp"
#include "tokenize/state_vector.hpp"

using namespace exprflow;

namespace {

Options tiny(const std::string& architecture, const std::string& objective = "") {
  Options o;
  o.set("architecture", architecture);
  if (!objective.empty()) o.set("objective", objective);
  if (architecture == "latent_tokens") {
    o.set("n_tokens", 4).set("token_dim", 16).set("n_layers", 2).set("n_heads", 2).set("hidden", 32);
  } else if (architecture == "latent_dit" || architecture == "latent_grn" || architecture == "latent_pathway") {
    o.set("n_tokens", 4).set("token_dim", 16).set("n_layers", 2).set("n_heads", 2);
  } else if (architecture == "latent_ssm") {
    o.set("n_tokens", 4).set("token_dim", 16).set("n_layers", 2).set("state_size", 4);
  } else if (architecture == "grn_attention") {
    o.set("token_dim", 8).set("n_layers", 2).set("n_heads", 2);
  } else if (architecture == "pathway_tokens") {
    o.set("token_dim", 16).set("n_layers", 2).set("n_heads", 2);
  } else if (architecture == "set_tokens") {
    o.set("n_tokens", 4).set("token_dim", 16).set("pool_heads", 2).set("n_layers", 2).set("n_heads", 2);
  } else if (architecture == "rank_tokens") {
    o.set("n_top", 5).set("token_dim", 8).set("n_layers", 2).set("n_heads", 2);
  } else if (architecture == "vae") {
  } else {
    o.set("hidden", 32).set("n_layers", 2);
  }
  return complete_spec(o);
}

int64_t parameter_count(torch::nn::Module& m) {
  int64_t total = 0;
  for (const Tensor& p : m.parameters()) total += p.numel();
  return total;
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
  EXPECT_FALSE(at::allclose(content[0], content[1]));
}

TEST(StateVector, OneTokenLinearInTheCell) {
  at::manual_seed(2);
  StateVector sv(20, 8);
  Tensor x = at::randn({3, 20});
  Tensor tokens = sv->forward(x);
  EXPECT_EQ(tokens.sizes(), (std::vector<int64_t>{3, 1, 8}));
  EXPECT_FALSE(sv->has_tokens());
  EXPECT_THROW(sv->weight_loadings(), std::invalid_argument);
  // Affine: f(a + b) - f(b) = f(a) - f(0).
  Tensor a = at::randn({1, 20}), b = at::randn({1, 20});
  EXPECT_TRUE(at::allclose(sv->forward(a + b) - sv->forward(b), sv->forward(a) - sv->forward(at::zeros({1, 20})),
                           1e-4, 1e-5));
}

TEST(GeneDecoders, ZeroAtInitWithOneOrTwoHeads) {
  at::manual_seed(2);
  Tensor tokens = at::randn({3, 4, 16});
  for (int64_t heads : {1, 2}) {
    MlpDecoder mlp(4 * 16, 32, 20, heads);
    LinearDecoder linear(4 * 16, 20, heads);
    for (GeneOutput out : {mlp->forward(tokens), linear->forward(tokens)}) {
      EXPECT_EQ(out.value.sizes(), (std::vector<int64_t>{3, 20}));
      EXPECT_TRUE(at::all(out.value == 0).item<bool>()) << "value head not zero at init";
      EXPECT_EQ(out.scale.defined(), heads == 2);
    }
    torch::NoGradGuard no_grad;
    for (auto& p : mlp->parameters()) p.normal_();
    GeneOutput moved = mlp->forward(tokens);
    EXPECT_GT(moved.value.abs().sum().item<float>(), 0.0f);
    if (heads == 2) EXPECT_FALSE(at::allclose(moved.value, moved.scale));
  }
  EXPECT_THROW(MlpDecoder(4, 4, 4, 3), std::invalid_argument);
}

TEST(ResidualMlp, FreshBackboneIsTheFinalNormAndTrains) {
  at::manual_seed(4);
  ResidualMlp mlp(8, 3, 2.0);
  Tensor x = at::randn({5, 1, 8}) * 3 + 1, c = at::randn({5, 8});
  // FiLM gates start at zero: every block is the identity, and the final
  // adaLN (zero-initialised too) leaves a plain LayerNorm.
  Tensor out = mlp->forward(x, c);
  Tensor normed = (x - x.mean(-1, true)) / (x.var(-1, false, true) + 1e-6).sqrt();
  EXPECT_TRUE(at::allclose(out, normed, 1e-4, 1e-4));
  // Gradients reach the FiLM layers (the blocks can learn).
  (mlp->forward(x, c) * at::randn({5, 1, 8})).sum().backward();
  bool film_grad = false;
  for (const auto& p : mlp->named_parameters()) {
    if (p.key().find("film") != std::string::npos && p.value().grad().defined() &&
        p.value().grad().abs().sum().item<float>() > 0) {
      film_grad = true;
    }
  }
  EXPECT_TRUE(film_grad);
}

TEST(DiTBackbone, DepthAddsOneBlockOfParameters) {
  // One DiT block of width 16, mlp_ratio 4: qkv 16*48+48, proj 16*16+16,
  // mlp 16*64+64 + 64*16+16, modulation 16*96+96.
  DiT two(16, 2, 2, 4.0), three(16, 3, 2, 4.0);
  const int64_t block = (16 * 48 + 48) + (16 * 16 + 16) + (16 * 64 + 64) + (64 * 16 + 16) + (16 * 96 + 96);
  EXPECT_EQ(parameter_count(*three) - parameter_count(*two), block);
  EXPECT_EQ(two->blocks()->size(), 2u);
}

TEST(StageTables, NamesAndErrors) {
  EXPECT_EQ(tokenizer_names(),
            (std::vector<std::string>{"gene_value_tokens", "latent_split", "latent_tokens", "pathway_tokens",
                                      "rank_tokens", "set_pooling", "state_vector"}));
  EXPECT_EQ(backbone_names(), (std::vector<std::string>{"cell_set_dit", "dit", "grn_dit", "learned_graph_dit",
                                                         "residual_mlp", "ssm"}));
  EXPECT_EQ(decoder_names(), (std::vector<std::string>{"gene_readout", "linear", "mlp", "pathway", "rank_readout",
                                                         "set_unpooling"}));
  try {
    make_backbone("mamba2", Options(), 4, 8, {});
    FAIL() << "unknown backbone built";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown backbone 'mamba2'; valid: 'cell_set_dit', 'dit', 'grn_dit', 'learned_graph_dit', 'residual_mlp', 'ssm'"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(tokenizer_defaults("genes"), std::invalid_argument);
  Options zero = tokenizer_defaults("latent_tokens");
  zero.set("n_tokens", 0);
  EXPECT_THROW(make_tokenizer("latent_tokens", zero, 10, {}), std::invalid_argument);
}

TEST(Compositions, TableAndSpecs) {
  const std::vector<std::string> names = composition_names();
  EXPECT_EQ(names, (std::vector<std::string>{"cells_as_tokens", "grn_attention", "latent_dit", "latent_grn", "latent_mlp",
                                             "latent_pathway", "latent_ssm", "latent_tokens", "pathway_tokens", "rank_tokens", "set_tokens",
                                             "state_mlp", "vae"}));
  EXPECT_EQ(composition("grn_attention").resources, std::vector<std::string>{"grn"});
  EXPECT_EQ(composition("pathway_tokens").resources, std::vector<std::string>{"gene_sets"});
  EXPECT_TRUE(composition("state_mlp").resources.empty());
  const Composition& lt = composition("latent_tokens");
  EXPECT_EQ(lt.tokenizer, "latent_tokens");
  EXPECT_EQ(lt.backbone, "dit");
  EXPECT_EQ(lt.objective, "ddpm");
  EXPECT_EQ(composition("state_mlp").objective, "flow");

  const Options d = composition_defaults("latent_tokens");
  EXPECT_EQ(d.text("objective"), "ddpm");
  for (const char* key : {"n_tokens", "token_dim", "n_layers", "n_heads", "hidden", "mlp_ratio", "timesteps",
                          "schedule", "prediction", "cfg_dropout", "seed", "device"}) {
    EXPECT_TRUE(d.has(key)) << "defaults lack " << key;
  }
  // The objective is a setting of every composition, and brings its own settings.
  const Options f = composition_defaults("latent_tokens", "flow");
  EXPECT_EQ(f.text("objective"), "flow");
  EXPECT_TRUE(f.has("time_distribution"));
  EXPECT_FALSE(f.has("schedule"));
  EXPECT_EQ(composition_defaults("state_mlp").integer("hidden"), 512);
  EXPECT_TRUE(composition_defaults("state_mlp").flag("input_skip", false));
  Options user;
  user.set("architecture", "state_mlp").set("objective", "ddpm").set("schedule", "linear");
  EXPECT_EQ(complete_spec(user).text("schedule"), "linear");
  Options flow_key_on_ddpm;
  flow_key_on_ddpm.set("architecture", "state_mlp").set("objective", "ddpm").set("ot_pairing", 1);
  EXPECT_THROW(complete_spec(flow_key_on_ddpm), std::invalid_argument);
  try {
    composition("pathway_tokenz");
    FAIL() << "unknown architecture accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'pathway_tokens', 'rank_tokens', 'set_tokens'"), std::string::npos)
        << e.what();
  }
  Options bad_objective;
  bad_objective.set("architecture", "state_mlp").set("objective", "gan");
  EXPECT_THROW(complete_spec(bad_objective), std::invalid_argument);

  // Latent compositions carry the count VAE's settings; the plain VAE has no
  // generative stage, so neither an objective nor its settings.
  const Options vae = composition_defaults("vae");
  for (const char* key : {"latent_dim", "vae_hidden", "vae_layers", "likelihood", "dispersion"}) {
    EXPECT_TRUE(vae.has(key)) << "vae lacks " << key;
    EXPECT_TRUE(composition_defaults("latent_mlp").has(key)) << "latent_mlp lacks " << key;
  }
  EXPECT_FALSE(vae.has("objective") || vae.has("cfg_dropout") || vae.has("n_layers"));
  EXPECT_EQ(composition_defaults("latent_dit").text("objective"), "flow");
  EXPECT_THROW(composition_defaults("vae", "flow"), std::invalid_argument);
  EXPECT_FALSE(composition_defaults("state_mlp").has("latent_dim"));
  EXPECT_TRUE(composition_train_options("latent_mlp").has("vae_epochs"));
  EXPECT_FALSE(composition_train_options("vae").has("vae_epochs"));
  EXPECT_FALSE(composition_train_options("state_mlp").has("kl_warmup"));
  // The latent models weigh the VAE's KL term by 2; the plain VAE keeps 1
  // (2 costs its counterfactual transfer; see latent_training()).
  for (const std::string& name : {"latent_mlp", "latent_dit", "latent_ssm", "latent_grn",
                                  "latent_pathway", "cells_as_tokens"}) {
    EXPECT_EQ(composition_train_options(name).number("kl_weight"), 2.0) << name;
  }
  EXPECT_EQ(composition_train_options("vae").number("kl_weight"), 1.0);
}

// Every composition x objective: forward shapes, zero output at init, the
// embedding, covariates change the output, one gradient step moves it.
TEST(ComposedNetwork, EveryCompositionAndObjective) {
  const int64_t G = 20, B = 6;
  for (const std::string& name : composition_names()) {
    if (composition(name).objective.empty()) continue;  // no network of its own
    for (const std::string& objective : {"ddpm", "flow"}) {
      SCOPED_TRACE(name + " / " + objective);
      at::manual_seed(3);
      const Options spec = tiny(name, objective);
      const int64_t heads = objective == "ddpm" ? 2 : 1;
      // Gene sets for the compositions built on them: genes 0-7 and 5-12, the rest residual.
      Resources sets;
      std::vector<float> member(2 * G, 0.0f);
      for (int64_t g = 0; g < 8; ++g) member[g] = member[G + 5 + g] = 1.0f;
      sets["gene_sets"] = {{2, G}, member, {}, {}};
      sets["grn"] = {{3, 2}, {0, 1, 1, 2, 3, 2}, {}, {}};
      ComposedNetwork net(spec, G, std::vector<CovariateSpec>{{"condition", 3}}, heads, sets);
      Tensor x = at::randn({B, G}), t = at::rand({B});
      Covariates c{{"condition", at::tensor(std::vector<int64_t>{0, 1, 2, -1, 0, 2})}};
      GeneOutput out = net->forward(x, t, c);
      EXPECT_EQ(out.value.sizes(), (std::vector<int64_t>{B, G}));
      EXPECT_EQ(out.scale.defined(), heads == 2);
      EXPECT_TRUE(at::all(out.value == 0).item<bool>()) << "zero-initialised output layer";
      Tensor e = net->embed(x);
      EXPECT_EQ(e.size(0), B);
      EXPECT_TRUE(at::isfinite(e).all().item<bool>());
      if (name == "latent_tokens") {
        EXPECT_EQ(net->tokens(x).sizes(), (std::vector<int64_t>{B, 4, 16}));
        EXPECT_EQ(net->token_weight_loadings().sizes(), (std::vector<int64_t>{4, G}));
      } else if (name == "pathway_tokens") {
        EXPECT_EQ(net->tokens(x).sizes(), (std::vector<int64_t>{B, 4, 16}));  // 2 sets + residual + summary
        EXPECT_EQ(net->token_weight_loadings().sizes(), (std::vector<int64_t>{4, G}));
        EXPECT_EQ(net->token_names(), (std::vector<std::string>{"set_1", "set_2", "residual_genes", "summary"}));
      } else if (name == "set_tokens") {
        EXPECT_EQ(net->tokens(x).sizes(), (std::vector<int64_t>{B, 5, 16}));  // 4 pooled + summary
        EXPECT_THROW(net->token_weight_loadings(), std::invalid_argument);  // no linear gene path
      } else if (name == "latent_dit" || name == "latent_grn" || name == "latent_pathway" || name == "latent_ssm") {
        // Chunks of a latent code: tokens, but no gene path behind them.
        EXPECT_EQ(net->tokens(x).sizes(), (std::vector<int64_t>{B, 4, 16}));
        EXPECT_THROW(net->token_weight_loadings(), std::invalid_argument);
      } else {
        EXPECT_THROW(net->tokens(x), std::invalid_argument);
      }

      std::vector<Tensor> params = net->parameters();
      for (int step = 0; step < 10; ++step) {
        for (Tensor& p : params) p.mutable_grad() = Tensor();
        (net->forward(x, t, c).value - at::ones({B, G})).pow(2).mean().backward();
        torch::NoGradGuard no_grad;
        for (Tensor& p : params) {
          if (p.grad().defined()) p.sub_(0.2 * p.grad());
        }
      }
      GeneOutput after = net->forward(x, t, c);
      EXPECT_GT(after.value.abs().mean().item<float>(), 0.01f);
      // Time and condition reach the output (through zero-initialised
      // modulation layers, which the steps above have moved).
      EXPECT_GT((after.value - net->forward(x, 1 - t, c).value).abs().max().item<float>(), 1e-6f);
      EXPECT_GT((after.value - net->forward(x, t, null_covariates(c)).value).abs().max().item<float>(), 1e-6f);
    }
  }
}
