// Gene-set (pathway) tokens: the layout of the "gene_sets" resource, and the
// tokenizer and decoder against plain per-set, per-gene reference loops.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "decode/pathway_decoder.hpp"
#include "error_message.hpp"
#include "exprflow/api.hpp"
#include "tokenize/gene_set_layout.hpp"
#include "tokenize/pathway_tokens.hpp"

using namespace exprflow;

namespace {

constexpr int64_t kGenes = 9;

// set_a: genes 0-3; set_b: genes 2-5 (2 and 3 in both); genes 6-8 in none.
Resources two_sets() {
  std::vector<float> member(2 * kGenes, 0.0f);
  for (int g : {0, 1, 2, 3}) member[g] = 1;
  for (int g : {2, 3, 4, 5}) member[kGenes + g] = 1;
  Resources r;
  r["gene_sets"] = {{2, kGenes}, member, {"set_a", "set_b"}, {}};
  return r;
}

bool member(const Resources& r, int64_t s, int64_t g) {
  return r.at("gene_sets").values[s * kGenes + g] == 1.0f;
}

// The message of the std::invalid_argument building a layout throws.
std::string layout_error(const Resources& r, int64_t genes) {
  return error_of([&] { GeneSetLayout::from_resources(r, genes); });
}

}  // namespace

TEST(GeneSetLayout, GroupsPairsByTokenAndAddsTheResidual) {
  const GeneSetLayout layout = GeneSetLayout::from_resources(two_sets(), kGenes);
  EXPECT_EQ(layout.n_sets, 2);
  EXPECT_EQ(layout.n_residual_genes, 3);
  EXPECT_EQ(layout.n_tokens(), 3);
  EXPECT_EQ(layout.token_names, (std::vector<std::string>{"set_a", "set_b", kResidualTokenName}));
  EXPECT_EQ(layout.offsets, (std::vector<int64_t>{0, 4, 8, 11}));
  EXPECT_EQ(layout.pair_gene, (std::vector<int64_t>{0, 1, 2, 3, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(layout.pair_token, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(layout.gene_share, (std::vector<float>{1, 1, 0.5f, 0.5f, 1, 1, 1, 1, 1}));
}

TEST(GeneSetLayout, NoResidualTokenWhenEveryGeneIsInASet) {
  Resources r;
  std::vector<float> all(kGenes, 1.0f);
  r["gene_sets"] = {{1, kGenes}, all, {}, {}};
  const GeneSetLayout layout = GeneSetLayout::from_resources(r, kGenes);
  EXPECT_EQ(layout.n_tokens(), 1);
  EXPECT_EQ(layout.n_residual_genes, 0);
  EXPECT_EQ(layout.token_names, std::vector<std::string>{"set_1"});
}

TEST(GeneSetLayout, RefusesWhatIsNotAMembershipMatrix) {
  EXPECT_TRUE(mentions(layout_error(Resources{}, kGenes), "needs the resource 'gene_sets'"));
  Resources r = two_sets();
  EXPECT_TRUE(mentions(layout_error(r, kGenes + 1), "one column per gene of the model (10)"));
  r["gene_sets"].values[5] = 0.5f;
  EXPECT_TRUE(mentions(layout_error(r, kGenes), "only 0 and 1"));
  r = two_sets();
  for (int64_t g = 0; g < kGenes; ++g) r["gene_sets"].values[kGenes + g] = 0.0f;
  EXPECT_TRUE(mentions(layout_error(r, kGenes), "set 'set_b' holds none of the model's genes"));
}

TEST(PathwayTokens, EachTokenIsALinearMapOfItsOwnGenes) {
  torch::manual_seed(1);
  const Resources r = two_sets();
  PathwayTokens tokenizer(GeneSetLayout::from_resources(r, kGenes), 5);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : tokenizer->parameters()) p.normal_();
  }
  const GeneSetLayout& layout = tokenizer->layout();
  const Tensor x = at::randn({4, kGenes});
  const Tensor tokens = tokenizer->forward(x);  // (4, 3, 5)
  ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{4, 3, 5}));

  // Reference: a loop over (token, gene) pairs with each pair's weight row.
  const Tensor weight = tokenizer->named_parameters()["weight"], bias = tokenizer->named_parameters()["bias"];
  Tensor expected = bias.unsqueeze(0).repeat({4, 1, 1}).clone();
  for (int64_t e = 0; e < layout.n_pairs(); ++e) {
    const int64_t t = layout.pair_token[e], g = layout.pair_gene[e];
    expected.select(1, t) += x.select(1, g).unsqueeze(1) * weight[e].unsqueeze(0);
  }
  EXPECT_TRUE(at::allclose(tokens, expected, 1e-5, 1e-5));

  // A gene outside a set does not move its token.
  Tensor moved = x.clone();
  moved.select(1, 7) += 3.0;
  const Tensor after = tokenizer->forward(moved);
  EXPECT_TRUE(at::allclose(after.select(1, 0), tokens.select(1, 0)));
  EXPECT_TRUE(at::allclose(after.select(1, 1), tokens.select(1, 1)));
  EXPECT_FALSE(at::allclose(after.select(1, 2), tokens.select(1, 2)));

  // Loadings: zero exactly where a token does not hold the gene.
  const Tensor loadings = tokenizer->weight_loadings();  // (3, 9)
  for (int64_t s = 0; s < 2; ++s) {
    for (int64_t g = 0; g < kGenes; ++g) {
      EXPECT_EQ(loadings[s][g].item<float>() > 0, member(r, s, g)) << s << "," << g;
    }
  }
  for (int64_t g = 0; g < kGenes; ++g) EXPECT_EQ(loadings[2][g].item<float>() > 0, g >= 6) << g;
  EXPECT_EQ(tokenizer->token_names(), (std::vector<std::string>{"set_a", "set_b", kResidualTokenName}));
}

// With a summary token, the sets' and residual tokens stay as they were and
// one more follows: a linear map of every gene, named, with a row of
// loadings on every gene.
TEST(PathwayTokens, EndWithTheSummaryToken) {
  const Resources r = two_sets();
  torch::manual_seed(3);
  PathwayTokens plain(GeneSetLayout::from_resources(r, kGenes), 5);
  torch::manual_seed(3);
  PathwayTokens tokenizer(GeneSetLayout::from_resources(r, kGenes), 5, /*summary_token=*/true);
  EXPECT_EQ(tokenizer->n_tokens(), 4);
  const Tensor x = at::randn({4, kGenes});
  const Tensor tokens = tokenizer->forward(x);  // (4, 4, 5)
  ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{4, 4, 5}));
  EXPECT_TRUE(at::allclose(tokens.narrow(1, 0, 3), plain->forward(x)));
  auto p = tokenizer->named_parameters();
  EXPECT_TRUE(at::allclose(tokens.select(1, 3), at::matmul(x, p["summary.weight"].t()) + p["summary.bias"], 1e-5,
                           1e-6));
  EXPECT_EQ(tokenizer->token_names(),
            (std::vector<std::string>{"set_a", "set_b", kResidualTokenName, kSummaryTokenName}));
  const Tensor loadings = tokenizer->weight_loadings();  // (4, 9)
  ASSERT_EQ(loadings.sizes(), (std::vector<int64_t>{4, kGenes}));
  EXPECT_TRUE(at::allclose(loadings.narrow(0, 0, 3), plain->weight_loadings()));
  EXPECT_TRUE(at::allclose(loadings[3], p["summary.weight"].norm(2, {0})));
}

// The decoder reads the summary token by its own map, zero at the start, and
// the others as without it.
TEST(PathwayDecoder, ReadsTheSummaryTokenByItsOwnMap) {
  const GeneSetLayout layout = GeneSetLayout::from_resources(two_sets(), kGenes);
  PathwayDecoder decoder(layout, 5, /*heads=*/2, /*n_summary=*/1);
  auto p = decoder->named_parameters();
  EXPECT_EQ(p["summary.weight"].abs().sum().item<float>(), 0.0f) << "starts at zero";
  {
    torch::NoGradGuard no_grad;
    for (auto& param : decoder->parameters()) param.normal_();
  }
  const Tensor h = at::randn({3, layout.n_tokens() + 1, 5});
  const GeneOutput out = decoder->forward(h);
  PathwayDecoder without(layout, 5, /*heads=*/2);
  {
    torch::NoGradGuard no_grad;
    auto q = without->named_parameters();
    q["weight"].copy_(p["weight"]);
    q["bias"].copy_(p["bias"]);
  }
  const GeneOutput sets = without->forward(h.narrow(1, 0, layout.n_tokens()));
  const Tensor own = at::matmul(h.select(1, layout.n_tokens()), p["summary.weight"].t());  // (3, 2 G)
  EXPECT_TRUE(at::allclose(out.value - sets.value, own.narrow(1, 0, kGenes), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(out.scale - sets.scale, own.narrow(1, kGenes, kGenes), 1e-4, 1e-5));
  EXPECT_TRUE(mentions(error_of([&] { decoder->forward(h.narrow(1, 0, layout.n_tokens())); }), "needs 4 tokens"));
}

TEST(PathwayDecoder, MatchesTheMeanOverTheSetsHoldingEachGene) {
  torch::manual_seed(2);
  const GeneSetLayout layout = GeneSetLayout::from_resources(two_sets(), kGenes);
  for (int64_t heads : {1, 2}) {
    PathwayDecoder decoder(layout, 5, heads);
    const Tensor h = at::randn({3, layout.n_tokens(), 5});
    // Zero-initialised: the untrained decoder predicts 0.
    EXPECT_EQ(decoder->forward(h).value.abs().max().item<float>(), 0.0f);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : decoder->parameters()) p.normal_();
    }
    const GeneOutput out = decoder->forward(h);
    const Tensor u = decoder->named_parameters()["weight"].view({layout.n_pairs(), heads, 5});
    const Tensor c = decoder->named_parameters()["bias"].view({heads, kGenes});
    for (int64_t head = 0; head < heads; ++head) {
      Tensor expected = c[head].unsqueeze(0).repeat({3, 1}).clone();  // (3, G)
      for (int64_t g = 0; g < kGenes; ++g) {
        Tensor sum = at::zeros({3});
        int holders = 0;
        for (int64_t e = 0; e < layout.n_pairs(); ++e) {
          if (layout.pair_gene[e] != g) continue;
          sum += (h.select(1, layout.pair_token[e]) * u[e][head]).sum(1);
          ++holders;
        }
        expected.select(1, g) += sum / holders;
      }
      const Tensor got = head == 0 ? out.value : out.scale;
      EXPECT_TRUE(at::allclose(got, expected, 1e-5, 1e-5)) << heads << " heads, head " << head;
    }
    EXPECT_EQ(out.scale.defined(), heads == 2);
  }
}

TEST(PathwayTokens, GradientsReachEveryPairWeight) {
  torch::manual_seed(3);
  const GeneSetLayout layout = GeneSetLayout::from_resources(two_sets(), kGenes);
  PathwayTokens tokenizer(layout, 4);
  PathwayDecoder decoder(layout, 4, 1);
  const Tensor x = at::randn({6, kGenes}), target = at::randn({6, kGenes});
  auto loss = [&] { return (decoder->forward(tokenizer->forward(x)).value * target).sum(); };
  loss().backward();
  // The zero-initialised decoder passes no gradient back to the tokens yet,
  // but gets one itself for every (token, gene) pair.
  EXPECT_EQ(tokenizer->named_parameters()["weight"].grad().abs().max().item<float>(), 0.0f);
  EXPECT_GT(decoder->named_parameters()["weight"].grad().abs().sum(1).min().item<float>(), 0.0f);
  {
    torch::NoGradGuard no_grad;
    decoder->named_parameters()["weight"].normal_();
  }
  tokenizer->zero_grad();
  loss().backward();
  EXPECT_GT(tokenizer->named_parameters()["weight"].grad().abs().sum(1).min().item<float>(), 0.0f);
}

TEST(PathwayTokens, ModelsNameTheirTokensAlsoAfterLoading) {
  std::vector<std::string> genes;
  for (int64_t g = 0; g < kGenes; ++g) genes.push_back("g" + std::to_string(g));
  const Options spec = Options().set("architecture", "pathway_tokens").set("token_dim", 8).set("n_layers", 1)
                           .set("n_heads", 2);
  auto model = GenerativeModel::create(spec, genes, {}, two_sets());
  const std::vector<std::string> names = {"set_a", "set_b", kResidualTokenName, kSummaryTokenName};
  EXPECT_EQ(model->token_names(), names);
  EXPECT_EQ(GenerativeModel::load_bytes(model->to_bytes())->token_names(), names);
  // Without its gene sets the architecture cannot be built, and says so.
  EXPECT_TRUE(mentions(error_of([&] { GenerativeModel::create(spec, genes, {}); }), "'gene_sets'"));
}
