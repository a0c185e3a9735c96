#include "connectivity/registry.hpp"

#include <functional>
#include <map>
#include <stdexcept>

#include "models/named_registry.hpp"
#include "connectivity/bilinear_network.hpp"
#include "connectivity/cross_attention_network.hpp"
#include "connectivity/region_encoders.hpp"
#include "connectivity/siamese_network.hpp"

namespace exprflow {

namespace {

struct Entry {
  std::function<Options()> defaults;
  std::function<std::shared_ptr<PairNetworkImpl>(const Options&, const GeneEmbedding&)> build;
  // Training options that differ from the shared ones (common_training()).
  std::function<Options()> training = [] { return Options(); };
};

// Training options of every architecture unless its entry says otherwise.
Options common_training() {
  Options o;
  // EMA decay 0.99 (not the generative models' 0.999): a region-pair data set
  // gives ~10-20 steps per epoch at batch 512, too few for a 1000-step average.
  o.set("epochs", 100.0).set("batch_size", 512.0).set("learning_rate", 1e-3).set("weight_decay", 0.01)
      .set("cosine", 1.0).set("warmup_fraction", 0.05).set("min_lr_ratio", 0.1).set("grad_clip", 1.0)
      .set("ema_decay", 0.99).set("patience", 10.0).set("seed", 1.0)
      // A batch whose attention weights would exceed this many MB runs as
      // several passes whose gradients add up: the same optimiser step.
      .set("memory_budget_mb", 1024.0);
  return o;
}

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
      {"bilinear",
       {[] {
          Options o;
          o.set("architecture", "bilinear")
              .set("seed", 1.0)
              .set("device", "cpu")
              .set("rank", 8.0)         // U, V are genes x rank
              .set("lambda", 1e-3)      // ridge penalty on U and V (standardised target units)
              .set("symmetric", 1.0);   // W = U V' + V U' (f(i, j) = f(j, i)); 0: W = U V'
          return o;
        },
        [](const Options& spec, const GeneEmbedding& genes) {
          return std::static_pointer_cast<PairNetworkImpl>(std::make_shared<BilinearNetworkImpl>(spec, genes.n_genes));
        },
        // Adam on the whole training set per step (one step per epoch for up
        // to 16,384 pairs, an atlas of 128 regions), constant learning rate,
        // no weight decay (the ridge penalty is in the loss), no clipping and
        // no weight averaging: a small convex-in-each-factor problem that
        // needs many exact steps rather than noise control. The best
        // validation epoch is kept, and patience = epochs never stops the
        // run: the first ~50 full-batch steps at this learning rate
        // oscillate, and on DK data a shorter patience often ends the run
        // on a lucky epoch of that phase (5-fold CV Pearson r 0.27 with
        // patience 100 against 0.31 over the whole run).
        [] {
          Options o;
          o.set("epochs", 1500.0).set("batch_size", 16384.0).set("learning_rate", 0.01).set("weight_decay", 0.0)
              .set("cosine", 0.0).set("warmup_fraction", 0.0).set("grad_clip", 0.0).set("ema_decay", 0.0)
              .set("patience", 1500.0);
          return o;
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

Options connectivity_training_defaults(const std::string& architecture) {
  return common_training().merged(lookup(architecture).training(), /*known_only=*/true);
}

std::shared_ptr<PairNetworkImpl> build_pair_network(const Options& spec, const GeneEmbedding& genes) {
  return lookup(spec.text("architecture")).build(spec, genes);
}

}  // namespace exprflow
