#include "models/stages.hpp"

#include <functional>
#include <map>
#include <stdexcept>

#include "backbone/dit.hpp"
#include "backbone/residual_mlp.hpp"
#include "backbone/ssm.hpp"
#include "backbone/edge_attention.hpp"
#include "backbone/cell_set_dit.hpp"
#include "backbone/learned_graph_dit.hpp"
#include "decode/gene_readout.hpp"
#include "decode/linear_decoder.hpp"
#include "decode/mlp_decoder.hpp"
#include "decode/pathway_decoder.hpp"
#include "decode/rank_readout.hpp"
#include "decode/set_unpooling.hpp"
#include "models/named_registry.hpp"
#include "tokenize/gene_value_tokens.hpp"
#include "tokenize/latent_split.hpp"
#include "tokenize/latent_tokens.hpp"
#include "tokenize/pathway_tokens.hpp"
#include "tokenize/rank_tokens.hpp"
#include "tokenize/set_pooling_tokens.hpp"
#include "tokenize/state_vector.hpp"

namespace exprflow {

namespace {

template <class Factory>
struct StageEntry {
  std::function<Options()> defaults;
  Factory make;
};

// Whether grn_dit's blocks recompute their activations in backward. "auto"
// (the default): from kCheckpointedGenes genes. Below it the saving is small
// and the time is not: on the example data (2,000 genes, batch 32) peak
// resident memory was 1.30 GB on against 1.32 GB off, and 5 epochs took 3.1
// against 1.8 minutes. At 20,000 genes and 100,000 edges (cell node on) a
// step of 32 cells peaks at 2.9 GB resident with the R package's memory
// policy (reuse_large_allocations), at 2.1 GB with glibc's defaults
// (bench_compositions --malloc-default), which trains 2.5x slower. Without
// recomputing, under glibc's defaults: 3.5 GB.
constexpr int64_t kCheckpointedGenes = 10000;

bool grn_checkpointing(const Options& s, int64_t genes) {
  const auto found = s.values().find("activation_checkpointing");
  const bool text = found != s.values().end() && found->second.kind == Options::Value::Kind::text;
  if (text && found->second.text == "auto") return genes >= kCheckpointedGenes;
  try {
    return s.flag("activation_checkpointing", true);  // Options' own spellings of a flag
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument("setting 'activation_checkpointing' must be \"auto\", true or false, got '" +
                                (text ? found->second.text : std::string("a number other than 0 or 1")) + "'");
  }
}

using TokenizerFactory = std::function<std::shared_ptr<TokenizerImpl>(const Options&, int64_t, const Resources&)>;
// Backbones receive the number of tokens and their width.
using BackboneFactory =
    std::function<std::shared_ptr<BackboneImpl>(const Options&, int64_t, int64_t, const Resources&)>;
using DecoderFactory = std::function<std::shared_ptr<GeneDecoderImpl>(const Options&, int64_t, int64_t, int64_t,
                                                                      int64_t, const Resources&)>;

// A whole number >= 0 (a depth of zero layers is allowed).
int64_t count(const Options& spec, const std::string& key) {
  const long v = spec.integer(key);
  if (v < 0) throw std::invalid_argument("setting '" + key + "' must be at least 0, got " + std::to_string(v));
  return v;
}

double positive_number(const Options& spec, const std::string& key) {
  const double v = spec.number(key);
  if (!(v > 0)) throw std::invalid_argument("setting '" + key + "' must be positive, got " + std::to_string(v));
  return v;
}

const std::map<std::string, StageEntry<TokenizerFactory>>& tokenizer_table() {
  static const std::map<std::string, StageEntry<TokenizerFactory>> table = {
      {"latent_tokens",
       {[] { return Options().set("n_tokens", 64.0).set("token_dim", 256.0).set("hidden", 2048.0); },
        [](const Options& s, int64_t genes, const Resources&) -> std::shared_ptr<TokenizerImpl> {
          return std::make_shared<LatentTokenEncoderImpl>(genes, s.positive("hidden"), s.positive("n_tokens"),
                                                          s.positive("token_dim"));
        }}},
      {"gene_value_tokens",
       {[] { return Options().set("token_dim", 32.0); },
        [](const Options& s, int64_t genes, const Resources&) -> std::shared_ptr<TokenizerImpl> {
          return std::make_shared<GeneValueTokensImpl>(genes, s.positive("token_dim"));
        }}},
      {"rank_tokens",
       // summary_token: the sequence ends with a linear map of the whole
       // state (tokenize/rank_tokens.hpp says why). Files from before the
       // setting have none.
       {[] { return Options().set("n_top", 128.0).set("token_dim", 64.0).set("summary_token", 1.0); },
        [](const Options& s, int64_t genes, const Resources&) -> std::shared_ptr<TokenizerImpl> {
          return std::make_shared<RankTokensImpl>(genes, s.positive("n_top"), s.positive("token_dim"),
                                                  s.flag("summary_token", false));
        }}},
      {"set_pooling",
       // summary_token: a linear map of the whole state follows the pooled
       // tokens (tokenize/set_pooling_tokens.hpp says why). Files from
       // before the setting have none.
       {[] {
          return Options().set("n_tokens", 16.0).set("token_dim", 64.0).set("pool_heads", 4.0)
              .set("summary_token", 1.0);
        },
        [](const Options& s, int64_t genes, const Resources&) -> std::shared_ptr<TokenizerImpl> {
          return std::make_shared<SetPoolingTokensImpl>(genes, s.positive("n_tokens"), s.positive("token_dim"),
                                                        s.positive("pool_heads"), s.flag("summary_token", false));
        }}},
      {"latent_split",
       {[] { return Options().set("n_tokens", 8.0).set("token_dim", 128.0); },
        [](const Options& s, int64_t latent_dim, const Resources&) -> std::shared_ptr<TokenizerImpl> {
          return std::make_shared<LatentSplitImpl>(latent_dim, s.positive("n_tokens"), s.positive("token_dim"));
        }}},
      {"pathway_tokens",
       // summary_token: as set_pooling's.
       {[] { return Options().set("token_dim", 64.0).set("summary_token", 1.0); },
        [](const Options& s, int64_t genes, const Resources& r) -> std::shared_ptr<TokenizerImpl> {
          return std::make_shared<PathwayTokensImpl>(GeneSetLayout::from_resources(r, genes),
                                                     s.positive("token_dim"), s.flag("summary_token", false));
        }}},
      {"state_vector",
       {[] { return Options().set("hidden", 512.0); },
        [](const Options& s, int64_t genes, const Resources&) -> std::shared_ptr<TokenizerImpl> {
          return std::make_shared<StateVectorImpl>(genes, s.positive("hidden"));
        }}},
  };
  return table;
}

const std::map<std::string, StageEntry<BackboneFactory>>& backbone_table() {
  static const std::map<std::string, StageEntry<BackboneFactory>> table = {
      {"dit",
       {[] {
          return Options().set("n_layers", 8.0).set("n_heads", 8.0).set("mlp_ratio", 4.0)
              .set("activation_checkpointing", 0.0).set("condition_path", "adaln");
        },
        [](const Options& s, int64_t, int64_t dim, const Resources&) -> std::shared_ptr<BackboneImpl> {
          return std::make_shared<DiTImpl>(dim, count(s, "n_layers"), s.positive("n_heads"),
                                           positive_number(s, "mlp_ratio"), nullptr,
                                           s.flag("activation_checkpointing", false), s.text("condition_path"));
        }}},
      // DiT blocks whose attention follows the edges of the "grn" resource
      // (one token per gene; backbone/edge_attention.hpp).
      {"grn_dit",
       {[] {
          // One token per gene: activations are (B, genes, D) per op.
          // activation_checkpointing "auto": blocks recompute theirs in
          // backward from kCheckpointedGenes genes (grn_checkpointing()).
          // cell_node: a virtual node every gene attends to, and that attends
          // to every gene (EdgeGraph::with_cell_node()). On by default: on
          // held-out PBMC3k at the package defaults (TRRUST, seed 1; RBF MMD /
          // energy distance / kNN AUC / condition accuracy) 0.0056 / 0.204 /
          // 0.672 / 0.918 with it against 0.0070 / 0.246 / 0.742 / 0.948
          // without (NB copula 0.0093 / 0.351 / 0.658 / 0.825), for 22% more
          // fit time. Seeds 1-3 with it: 0.0063 / 0.234 / 0.663 / 0.925
          // (copula 0.0089 / 0.329 / 0.650 / 0.837; kNN AUC won on seed 2
          // only). A network reaches few genes (TRRUST 207 of 2,000), so
          // without the node most genes see only themselves. (An earlier
          // 20-epoch run on the example data had shown no difference.)
          // cell_node_summary: the node starts as a learned weighted sum of
          // the gene tokens, a linear map of the whole state, instead of
          // their mean (backbone/dit.hpp says why). On by default: same
          // split, seed 1, 0.0045 / 0.205 / 0.631 / 0.902 against 0.0058 /
          // 0.272 / 0.687 / 0.918 with the mean (models/compositions.cpp).
          return Options().set("n_layers", 2.0).set("n_heads", 2.0).set("mlp_ratio", 2.0)
              .set("activation_checkpointing", "auto").set("cell_node", 1.0).set("cell_node_summary", 1.0);
        },
        [](const Options& s, int64_t genes, int64_t dim, const Resources& r) -> std::shared_ptr<BackboneImpl> {
          EdgeGraph network = EdgeGraph::from_resources(r, genes);
          if (s.flag("cell_node", false)) network = network.with_cell_node();
          auto graph = std::make_shared<EdgeIndex>(EdgeIndex::of(network));
          return std::make_shared<DiTImpl>(dim, count(s, "n_layers"), s.positive("n_heads"),
                                           positive_number(s, "mlp_ratio"), graph, grn_checkpointing(s, genes),
                                           "adaln", s.flag("cell_node", false) && s.flag("cell_node_summary", false));
        }}},
      // DiT blocks attending across the cells of a set (cells_as_tokens).
      {"cell_set_dit",
       {[] { return Options().set("n_layers", 4.0).set("n_heads", 4.0).set("mlp_ratio", 2.0).set("set_size", 32.0); },
        [](const Options& s, int64_t, int64_t dim, const Resources&) -> std::shared_ptr<BackboneImpl> {
          return std::make_shared<CellSetDiTImpl>(dim, count(s, "n_layers"), s.positive("n_heads"),
                                                  positive_number(s, "mlp_ratio"), s.positive("set_size"));
        }}},
      // DiT blocks attending along a learned sparse token graph (latent_grn).
      {"learned_graph_dit",
       {[] {
          return Options().set("n_layers", 4.0).set("n_heads", 4.0).set("mlp_ratio", 2.0).set("graph_degree", 3.0);
        },
        [](const Options& s, int64_t n_tokens, int64_t dim, const Resources&) -> std::shared_ptr<BackboneImpl> {
          return std::make_shared<LearnedGraphDiTImpl>(n_tokens, dim, count(s, "n_layers"), s.positive("n_heads"),
                                                       positive_number(s, "mlp_ratio"), count(s, "graph_degree"));
        }}},
      {"ssm",
       {[] {
          return Options().set("n_layers", 4.0).set("ssm_layer", "s4d").set("state_size", 16.0)
              .set("ssm_init", "lin").set("expand", 2.0).set("mlp_ratio", 2.0).set("dropout", 0.1);
        },
        [](const Options& s, int64_t, int64_t dim, const Resources&) -> std::shared_ptr<BackboneImpl> {
          return std::make_shared<SsmBackboneImpl>(dim, count(s, "n_layers"), s.text("ssm_layer"),
                                                   s.positive("state_size"), positive_number(s, "mlp_ratio"),
                                                   s.number("dropout"), s.text("ssm_init"), s.positive("expand"));
        }}},
      {"residual_mlp",
       {[] { return Options().set("n_layers", 4.0).set("mlp_ratio", 2.0).set("dropout", 0.1); },
        [](const Options& s, int64_t, int64_t dim, const Resources&) -> std::shared_ptr<BackboneImpl> {
          return std::make_shared<ResidualMlpImpl>(dim, count(s, "n_layers"), positive_number(s, "mlp_ratio"),
                                                   s.number("dropout"));
        }}},
  };
  return table;
}

const std::map<std::string, StageEntry<DecoderFactory>>& decoder_table() {
  static const std::map<std::string, StageEntry<DecoderFactory>> table = {
      {"mlp",
       {[] { return Options().set("hidden", 2048.0); },
        [](const Options& s, int64_t tokens, int64_t dim, int64_t genes, int64_t heads,
           const Resources&) -> std::shared_ptr<GeneDecoderImpl> {
          return std::make_shared<MlpDecoderImpl>(tokens * dim, s.positive("hidden"), genes, heads);
        }}},
      {"gene_readout",
       // per_gene_weights: each gene read by its own map (decode/gene_readout.hpp
       // says why). Files from before the setting have none and read with the
       // one shared map they were trained with.
       {[] { return Options().set("per_gene_weights", 1.0); },
        [](const Options& s, int64_t, int64_t dim, int64_t genes, int64_t heads,
           const Resources&) -> std::shared_ptr<GeneDecoderImpl> {
          return std::make_shared<GeneReadoutImpl>(genes, dim, heads, s.flag("per_gene_weights", false));
        }}},
      {"rank_readout",
       // Reads the rank tokenizer's sequence: its ranked genes, then its
       // summary token where it has one.
       {[] { return Options(); },
        [](const Options& s, int64_t n_tokens, int64_t dim, int64_t genes, int64_t heads,
           const Resources&) -> std::shared_ptr<GeneDecoderImpl> {
          const int64_t n_summary = s.flag("summary_token", false) ? 1 : 0;
          return std::make_shared<RankReadoutImpl>(genes, n_tokens - n_summary, dim, heads, n_summary);
        }}},
      {"set_unpooling",
       {[] { return Options().set("pool_heads", 4.0); },
        [](const Options& s, int64_t, int64_t dim, int64_t genes, int64_t heads,
           const Resources&) -> std::shared_ptr<GeneDecoderImpl> {
          // Reads the set tokenizer's summary token where it has one.
          return std::make_shared<SetUnpoolingImpl>(genes, dim, s.positive("pool_heads"), heads,
                                                    s.flag("summary_token", false) ? 1 : 0);
        }}},
      {"pathway",
       {[] { return Options(); },
        [](const Options& s, int64_t, int64_t dim, int64_t genes, int64_t heads,
           const Resources& r) -> std::shared_ptr<GeneDecoderImpl> {
          // Reads the pathway tokenizer's summary token where it has one.
          return std::make_shared<PathwayDecoderImpl>(GeneSetLayout::from_resources(r, genes), dim, heads,
                                                      s.flag("summary_token", false) ? 1 : 0);
        }}},
      {"linear",
       {[] { return Options(); },
        [](const Options&, int64_t tokens, int64_t dim, int64_t genes, int64_t heads,
           const Resources&) -> std::shared_ptr<GeneDecoderImpl> {
          return std::make_shared<LinearDecoderImpl>(tokens * dim, genes, heads);
        }}},
  };
  return table;
}

}  // namespace

std::vector<std::string> tokenizer_names() { return registry_names(tokenizer_table()); }
std::vector<std::string> backbone_names() { return registry_names(backbone_table()); }
std::vector<std::string> decoder_names() { return registry_names(decoder_table()); }

Options tokenizer_defaults(const std::string& name) {
  return registry_entry(tokenizer_table(), name, "tokenizer").defaults();
}
Options backbone_defaults(const std::string& name) {
  return registry_entry(backbone_table(), name, "backbone").defaults();
}
Options decoder_defaults(const std::string& name) {
  return registry_entry(decoder_table(), name, "decoder").defaults();
}

std::shared_ptr<TokenizerImpl> make_tokenizer(const std::string& name, const Options& spec, int64_t n_genes,
                                              const Resources& resources) {
  return registry_entry(tokenizer_table(), name, "tokenizer").make(spec, n_genes, resources);
}
std::shared_ptr<BackboneImpl> make_backbone(const std::string& name, const Options& spec, int64_t n_tokens,
                                            int64_t dim, const Resources& resources) {
  return registry_entry(backbone_table(), name, "backbone").make(spec, n_tokens, dim, resources);
}
std::shared_ptr<GeneDecoderImpl> make_decoder(const std::string& name, const Options& spec, int64_t n_tokens,
                                              int64_t dim, int64_t n_genes, int64_t heads,
                                              const Resources& resources) {
  return registry_entry(decoder_table(), name, "decoder").make(spec, n_tokens, dim, n_genes, heads, resources);
}

}  // namespace exprflow
