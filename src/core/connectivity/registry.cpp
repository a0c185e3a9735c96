#include "connectivity/registry.hpp"

#include <functional>
#include <map>
#include <stdexcept>

#include "models/named_registry.hpp"
#include "connectivity/cross_attention_network.hpp"
#include "connectivity/region_encoders.hpp"
#include "connectivity/siamese_network.hpp"

namespace exprflow {

namespace {

struct Entry {
  std::function<Options()> defaults;
  std::function<std::shared_ptr<PairNetworkImpl>(const Options&, const GeneEmbedding&)> build;
};

// Settings every connectivity architecture shares (seed table defaults).
Options common_defaults(const std::string& architecture) {
  Options o;
  o.set("architecture", architecture)
      .set("seed", 1.0)
      .set("device", "cpu")
      .set("d_model", 128.0)
      .set("n_layers", 4.0)
      .set("n_heads", 4.0)
      .set("dropout", 0.1)
      .set("mlp_ratio", 4.0)                 // MLP width of a layer = mlp_ratio * d_model
      .set("head_hidden", "512,256,128");  // hidden widths of the regression head
  return o;
}

// Gene tokens: binned expression + gene embedding.
Options& with_gene_tokens(Options& o) {
  return o.set("n_bins", 5.0).set("learned_bins", 0.0).set("bin_temperature", 0.05);
}

std::shared_ptr<PairNetworkImpl> siamese(const Options& spec, std::shared_ptr<RegionEncoderImpl> encoder) {
  return std::make_shared<SiameseNetworkImpl>(spec, std::move(encoder));
}

const std::map<std::string, Entry>& registry() {
  static const std::map<std::string, Entry> entries = {
      {"cross_attention",
       {[] {
          Options o = common_defaults("cross_attention");
          with_gene_tokens(o)
              .set("cls", "random")       // or "spatial": coordinates of i and j
              .set("n_cls", 1.0)
              .set("alibi", 0.0)          // ALiBi bias over the gene order (column order)
              .set("bidirectional", 0.0)  // also j -> i, averaged: symmetric predictions
              .set("query_self_attention", 0.0)  // queries (CLS + genes of i) also attend to each other
              .set("pooling", "mean");    // or "attention", "cls"
          return o;
        },
        [](const Options& spec, const GeneEmbedding& genes) {
          return std::static_pointer_cast<PairNetworkImpl>(std::make_shared<CrossAttentionNetworkImpl>(spec, genes));
        }}},
      {"self_attention_chunks",
       {[] { return common_defaults("self_attention_chunks").set("chunk_size", 32.0); },
        [](const Options& spec, const GeneEmbedding& genes) {
          return siamese(spec, std::make_shared<ChunkEncoderImpl>(spec, genes.n_genes, /*pooled=*/false));
        }}},
      {"self_attention_chunks_pooled",
       {[] { return common_defaults("self_attention_chunks_pooled").set("chunk_size", 32.0); },
        [](const Options& spec, const GeneEmbedding& genes) {
          return siamese(spec, std::make_shared<ChunkEncoderImpl>(spec, genes.n_genes, /*pooled=*/true));
        }}},
      {"gene_self_attention",
       {[] {
          Options o = common_defaults("gene_self_attention");
          return with_gene_tokens(o);
        },
        [](const Options& spec, const GeneEmbedding& genes) {
          return siamese(spec, std::make_shared<GeneTokenEncoderImpl>(spec, genes));
        }}},
  };
  return entries;
}

const Entry& lookup(const std::string& architecture) {
  return registry_entry(registry(), architecture, "connectivity architecture");
}

}  // namespace

std::vector<std::string> connectivity_architectures() {
  return registry_names(registry());
}

Options connectivity_defaults(const std::string& architecture) { return lookup(architecture).defaults(); }

std::shared_ptr<PairNetworkImpl> build_pair_network(const Options& spec, const GeneEmbedding& genes) {
  return lookup(spec.text("architecture")).build(spec, genes);
}

}  // namespace exprflow
