#include "models/compositions.hpp"

#include <map>
#include <stdexcept>

#include "models/count_vae.hpp"
#include "models/named_registry.hpp"
#include "models/stages.hpp"
#include "objective/objectives.hpp"

namespace exprflow {

namespace {

// Training of a model that is a count VAE alone: its options are the plain ones.
Options vae_training() {
  return Options().set("epochs", 200.0).set("batch_size", 128.0).set("learning_rate", 1e-3)
      .set("ema_decay", 0.0).set("patience", 20.0).set("kl_warmup", 0.25).set("kl_weight", 1.0);
}

// Gene-space token models (one token per gene or per gene set, or a rank
// sequence): batches of 32 at 1e-2, four times the steps of the shared
// defaults; each composition below gives the measurement that chose it.
Options gene_token_training() { return Options().set("batch_size", 32.0).set("learning_rate", 1e-2); }

// Two stages: vae_* options for the VAE, the plain ones for the latent flow.
// The VAE under a latent flow weighs its KL term by 2, not 1 as the "vae"
// alone does (where 2 costs counterfactual transfer, see count_vae.hpp);
// plausibly, codes nearer the prior are easier for the flow (not measured
// directly). Held-out
// cells, seeds 1-3, weight 2 against 1 (MMD on the real cells' kernel /
// energy distance / kNN AUC / condition accuracy / log-likelihood per cell):
// PBMC3k latent_mlp 0.0024 / 0.101 / 0.571 / 0.937 / -1554.4 against 0.0027
// / 0.111 / 0.569 / 0.939 / -1558.5, latent_dit 0.0029 / 0.119 / 0.589 /
// 0.939 / -1554 against 0.0033 / 0.131 / 0.594 / 0.937 / -1558; example
// data latent_mlp 0.0045 / 0.193 / 0.580 / 0.863 / -1599 against 0.0051 /
// 0.208 / 0.574 / 0.877 / -1603. MMD and log-likelihood improved on all nine
// seeds; condition accuracy fell on the example data (the independent-NB
// baseline's 0.878; real training cells score 0.828), where guidance 2.5
// gives 0.888 at MMD 0.0048 (on PBMC3k it costs MMD and kNN AUC). The cost
// is kNN AUC: worse by 0.002-0.006 here, by 0.009-0.042 on Kang 2018's 986
// control cells, where latent_ssm gained nothing (README). Tried and not
// kept: the VAE stage with vae_ema_decay 0.99 and vae_dropout 0.2 (which
// nudge the vae's own embedding, count_vae.hpp), seeds 1-3: PBMC3k
// latent_mlp 0.0024 / 0.100 / 0.601 / 0.935 / -1554.4 (kNN AUC worse by
// 0.030), example latent_mlp 0.0044 / 0.188 / 0.586 / 0.882 / -1597.9,
// example latent_dit 0.0048 / 0.199 / 0.586 / 0.878 / -1598.1 (worse on all
// four; condition accuracy only ties independent NB's 0.878).
Options latent_training() {
  Options o = Options().set("epochs", 300.0).set("batch_size", 128.0).set("learning_rate", 1e-3);
  const Options vae = vae_training();
  for (const char* key : {"epochs", "batch_size", "learning_rate", "ema_decay", "patience"}) {
    o.set(std::string("vae_") + key, vae.number(key));
  }
  return o.set("kl_warmup", vae.number("kl_warmup")).set("kl_weight", 2.0);
}

const std::map<std::string, Composition>& composition_table() {
  static const std::map<std::string, Composition> table = [] {
    std::map<std::string, Composition> t;
    auto add = [&t](Composition c) { t.emplace(c.name, std::move(c)); };
    add({"latent_tokens", "latent_tokens", "dit", "mlp", "gene", "ddpm",
         "learned latent tokens (MLP encoder) + DiT blocks (adaLN-Zero) + MLP decoder (seed Option 1)",
         Options()});
    add({"state_mlp", "state_vector", "residual_mlp", "linear", "gene", "flow",
         "no tokens: the expression vector through a residual MLP with FiLM by time and condition "
         "(seed Option A; the baseline every token model must beat)",
         Options().set("hidden", 512.0).set("n_layers", 3.0).set("mlp_ratio", 2.0),
         // Measured (see composition_train_options): 3e-3 beat 1e-3 on both seeds
         // (MMD 0.0103 / 0.0073 against 0.0104 / 0.0089, condition accuracy
         // 0.79 / 0.81 against 0.77 / 0.78).
         Options().set("learning_rate", 3e-3)});
    add({"pathway_tokens", "pathway_tokens", "dit", "pathway", "gene", "flow",
         "one token per gene set (a GMT's sets, or NMF modules) projected from its member genes, plus a "
         "residual token for genes in no set; DiT blocks; each token decodes its own genes (seed Option 2)",
         Options().set("n_layers", 4.0).set("n_heads", 4.0).set("mlp_ratio", 2.0),
         // Held-out PBMC3k (2,000 HVGs, Hallmark; MMD / energy / kNN AUC /
         // condition accuracy). Seed 1, batch 128: 0.0129 / 0.477 / 0.727 /
         // 0.857 at 1e-3, 0.0115 / 0.427 / 0.709 / 0.870 at 3e-3. Mean of
         // seeds 1-3: batch 128 at 3e-3 0.0108 / 0.404 / 0.686 / 0.876,
         // batch 32 at 1e-2 0.0102 / 0.385 / 0.682 / 0.897 (4x the steps,
         // 1.6x the fit time), independent NB 0.0102 / 0.365 / 0.734 / 0.901.
         // Tried on seed 1 at these defaults (0.0104 / 0.395 / 0.696 / 0.884;
         // NB copula 0.0093 / 0.351 / 0.658 / 0.825), none kept: token_dim 128
         // 0.0101 / 0.386 / 0.697 / 0.907 (1.4x the fit time); the 1,196
         // residual genes cut into 16 tokens by k-means of their profiles
         // 0.0100 / 0.383 / 0.714 / 0.890; sampling with guidance_scale 1.5 /
         // 2 / 3 0.0119 / 0.0164 / 0.0284 (kNN AUC 0.753 / 0.865 / 0.966),
         // with Heun at 1 0.0104 / 0.391 / 0.700 / 0.886. Neither the width
         // of the residual token nor the sampler holds it back. Nor does the
         // decoder's reach: every gene also reading the mean of all tokens
         // (zero-initialised weights per gene, not kept) gave seeds 1-3
         // 0.00985 / 0.384 / 0.690 / 0.899 (MMD on the reference cells'
         // kernel; independent NB 0.00981 / 0.365 / 0.734 / 0.901), though
         // on the example data (seed 1) it had moved kNN AUC 0.686 -> 0.640.
         // All of the above drew library sizes at random; with "matched"
         // sizes (data/library_sizes.hpp, the default since), seeds 1-3:
         // 0.0088 / 0.351 / 0.658 / 0.878 against 0.0097 / 0.377 / 0.684 /
         // 0.894 (NB copula 0.0087 / 0.329 / 0.650 / 0.837). With the gene
         // calibration as well (the default since), seed 1: 0.0061 / 0.240 /
         // 0.684 / 0.901 (NB copula 0.0091 / 0.351 / 0.658 / 0.825,
         // independent NB 0.0095 / 0.359 / 0.745 / 0.913). With the summary
         // token (tokenize/summary_token.hpp; the default since), seed 1:
         // 0.0056 / 0.223 / 0.649 / 0.846, correlation distance 0.067 against
         // 0.071: ahead of both baselines on the first three. Seeds 1-3:
         // 0.0057 / 0.225 / 0.647 / 0.879 / 0.070 (independent NB 0.0098 /
         // 0.365 / 0.734 / 0.901 / 0.073, copula 0.0087 / 0.329 / 0.650 /
         // 0.837 / 0.068); kNN AUC lost on seed 3 (0.654 against 0.648).
         gene_token_training(), {"gene_sets"}});
    add({"grn_attention", "gene_value_tokens", "grn_dit", "gene_readout", "gene", "flow",
         "one token per gene (gene embedding + value embedding); DiT blocks whose attention runs only along "
         "the edges of a regulatory network (regulator -> target, plus self-loops; optionally to and from one "
         "cell token) in O(edges); each gene's token read out to its value (seed Option 3)",
         // Activations are (batch, genes, token_dim) per op: at 20,000 genes
         // and 100,000 edges a training step of 128 cells peaks at 7.4 GB
         // even with checkpointed blocks and glibc's malloc defaults, one of
         // 32 at 2.1 GB (2.9 GB with the R package's memory policy;
         // bench_compositions, stages.cpp).
         Options(),
         // Example data, 20 epochs, seed 1: the centred correlation of
         // generated to real per-type mean profiles (B / CD14+ Mono / Naive
         // CD4 T / NK) was 0.01 / 0.09 / 0.06 / 0.04 at 1e-3, 0.35 / 0.72 /
         // 0.59 / 0.08 at 3e-3, 0.84 / 0.93 / 0.85 / 0.85 at 1e-2 (state_mlp
         // 0.92 / 0.96 / 0.92 / 0.89); 3e-2 spiked in validation loss.
         // Held-out PBMC3k (TRRUST, cell node, matched sizes and the gene
         // calibration; seed 1, baselines as pathway_tokens'): 0.0058 / 0.272 /
         // 0.687 / 0.918, fit 3,654 s and 2.0 GB beside another fit. With the
         // cell node starting as a learned weighted sum of the gene tokens
         // (cell_node_summary, the default since; stages.cpp): 0.0045 / 0.205
         // / 0.631 / 0.902, correlation distance 0.066 against 0.071, fit
         // 3,843 s: ahead of both baselines on MMD, energy distance and kNN
         // AUC (copula 0.0091 / 0.351 / 0.658 / 0.825 / 0.067).
         gene_token_training(), {"grn"}});
    add({"rank_tokens", "rank_tokens", "dit", "rank_readout", "gene", "flow",
         "the cell's n_top highest-valued genes as a sequence of gene + value + rank-position tokens "
         "(Geneformer style) and a summary token of the whole state, DiT blocks, each token read back to its "
         "gene and the pooled sequence and the summary token to all genes (seed Option 4)",
         Options().set("n_layers", 4.0).set("n_heads", 4.0).set("mlp_ratio", 2.0),
         // Held-out example data (seed 1; MMD / energy / kNN AUC / condition
         // accuracy): 0.069 / 1.93 / 0.975 / 0.62 at batch 128 and 1e-3 (700
         // steps in 100 epochs), 0.025 / 0.87 / 0.805 / 0.79 at batch 32 and
         // 1e-2, in the same fit time (independent NB 0.0073 / 0.27 / 0.654 / 0.86).
         // PBMC3k, seeds 1-3: 0.0282 / 1.01 / 0.834 / 0.844 at batch 32 and 1e-2,
         // 0.0329 / 1.10 / 0.886 / 0.802 at batch 128 and 1e-3 (independent NB
         // 0.0102 / 0.365 / 0.734 / 0.901). With matched sizes and the gene
         // calibration, seed 1: 0.0148 / 0.559 / 0.793 / 0.915 (independent NB
         // 0.0095 / 0.359 / 0.745 / 0.913, copula 0.0091 / 0.351 / 0.658):
         // still behind both. Neither more capacity for the genes outside the
         // sequence moved it (same split, tried and not kept): a hidden layer
         // of 512 between the pooled sequence and the genes gave 0.0144 /
         // 0.541 / 0.790 / 0.918, a 16-unit network per gene on its own noisy
         // value 0.0150 / 0.549 / 0.795 / 0.892. What it lacked was the rest
         // of the cell: a summary token (a linear map of the whole noisy
         // state) after the ranked genes gave 0.0051 / 0.204 / 0.632 / 0.872
         // (correlation distance 0.061 against 0.070; same split), ahead of
         // both baselines on the distribution metrics, behind the
         // independent-NB baseline on condition accuracy; seeds 1-3: 0.0057 /
         // 0.227 / 0.615 / 0.888 (independent NB 0.0098 / 0.365 / 0.734 /
         // 0.901, copula 0.0087 / 0.329 / 0.650 / 0.837).
         gene_token_training()});
    add({"set_tokens", "set_pooling", "dit", "set_unpooling", "gene", "flow",
         "gene + value tokens without positions pooled into n_tokens latent tokens by cross-attention from "
         "learned seeds (scLDM's set pooling), DiT blocks, genes' queries attending back to the tokens "
         "(seed Option C)",
         Options().set("n_layers", 4.0).set("n_heads", 4.0).set("mlp_ratio", 2.0),
         // Held-out example data (seed 1; as rank_tokens): 0.058 / 1.26 /
         // 0.982 / 0.52 at batch 128 and 1e-3, 0.0137 / 0.50 / 0.724 / 0.85 at
         // batch 32 and 1e-2, fit 879 s and 1,007 s (the second beside another
         // job). PBMC3k, seed 1: MMD 0.0137 at batch 32 and 1e-2 (a separate
         // run from 0.021 at the old defaults); seed 2: 0.0125 / 0.460 /
         // 0.751 / 0.921 (independent NB 0.0111 / 0.389 / 0.716 / 0.889,
         // NB copula 0.0095 / 0.349 / 0.643 / 0.822); seed 3, MMD on the
         // real cells' kernel: 0.0093 / 0.362 / 0.712 / 0.921 (independent
         // NB 0.0094 / 0.347 / 0.742 / 0.902, copula 0.0075 / 0.288 / 0.648
         // / 0.866). Epochs, example data, seed 1:
         // 50 gave 0.0167 / 0.56 / 0.773 / 0.77 (421 s), the default 100
         // 0.0138 / 0.51 / 0.726 / 0.85, 200 0.0132 / 0.49 / 0.706 / 0.84; a
         // value vector per gene (tried, not kept) 0.0144 /
         // 0.52 / 0.739 / 0.84, so neither is the default. PBMC3k with
         // matched sizes and the gene calibration, seed 1: 0.0087 / 0.326 /
         // 0.787 / 0.945 (baselines as pathway_tokens'): ahead of both on MMD
         // and energy distance, far behind on kNN AUC. With the summary
         // token (tokenize/summary_token.hpp; the default since), same split:
         // 0.0054 / 0.217 / 0.667 / 0.866, correlation distance 0.069 against
         // 0.076, embedding label transfer 0.83 against 0.38: ahead of
         // independent NB on the first three, of the copula on MMD and
         // energy distance, 0.009 behind it on kNN AUC. Seed 2: 0.0055 /
         // 0.212 / 0.640 / 0.890 / 0.073 (independent NB 0.0106 / 0.389 /
         // 0.716 / 0.889 / 0.074, copula 0.0093 / 0.349 / 0.643 / 0.822 /
         // 0.068). Seed 3: 0.0059 / 0.238 / 0.668 / 0.895 / 0.070 (0.0094 /
         // 0.347 / 0.742 / 0.902 / 0.073 and 0.0075 / 0.288 / 0.648 / 0.866 /
         // 0.068). Seeds 1-3: 0.0056 / 0.222 / 0.658 / 0.884 / 0.071 against
         // 0.0098 / 0.365 / 0.734 / 0.901 / 0.073 and 0.0087 / 0.329 / 0.650
         // / 0.837 / 0.068: the copula keeps kNN AUC (seeds 1 and 3).
         gene_token_training()});
    // Latent models: a count VAE (NB / ZINB / Poisson) and, but for "vae"
    // itself, a flow (or DDPM) on its posterior means. Their first stage
    // trains with the vae_* options, the second with the plain ones.
    add({"vae", "", "", "", "latent", "",
         "count VAE alone: NB / ZINB / Poisson decoder with the observed library size (scVI's convention); "
         "embeddings, reconstructions, held-out likelihood; generates from its N(0, I) prior",
         Options(), vae_training()});
    add({"latent_mlp", "state_vector", "residual_mlp", "linear", "latent", "flow",
         "count VAE + flow on its latent codes with a residual MLP (FiLM) backbone (CFGen's design)",
         Options().set("hidden", 512.0).set("n_layers", 3.0).set("mlp_ratio", 2.0), latent_training()});
    add({"latent_dit", "latent_split", "dit", "linear", "latent", "flow",
         "count VAE + flow on its latent code split into tokens, DiT blocks (scLDM's design)",
         Options().set("n_tokens", 8.0).set("token_dim", 128.0).set("n_layers", 4.0).set("n_heads", 4.0)
             .set("mlp_ratio", 2.0),
         latent_training()});
    add({"latent_grn", "latent_split", "learned_graph_dit", "linear", "latent", "flow",
         "count VAE + flow on its latent code split into tokens, DiT blocks whose attention follows a learned "
         "sparse graph among the tokens (each token keeps its graph_degree strongest sources; seed 'Hybrid "
         "approaches')",
         Options().set("n_tokens", 8.0).set("token_dim", 128.0).set("n_layers", 4.0).set("n_heads", 4.0)
             .set("mlp_ratio", 2.0),
         latent_training()});
    add({"latent_pathway", "latent_split", "dit", "linear", "latent", "flow",
         "count VAE whose latent tokens are tied to gene sets (each token's latent_per_token values encoded "
         "from its own genes alone; genes in no set share a residual token) + flow on those tokens through "
         "DiT blocks, one token per gene set (seed 'Hybrid approaches')",
         Options().set("vae_encoder", "gene_sets").set("vae_input", "log").set("token_dim", 64.0)
             .set("n_layers", 4.0).set("n_heads", 4.0).set("mlp_ratio", 2.0),
         latent_training(), {"gene_sets"}});
    add({"cells_as_tokens", "state_vector", "cell_set_dit", "linear", "latent", "flow",
         "count VAE + flow on its latent codes in which each cell is one token and DiT blocks attend across "
         "the cells of a set (cells of one condition, set_size at a time), so a set of cells is generated "
         "jointly; the cells of a set share one noise time (seed 'Cells as tokens')",
         // Held-out PBMC3k (2,000 HVGs, seed 1; MMD / energy / kNN AUC /
         // condition accuracy): 0.0031 / 0.124 / 0.618 / 0.933 against
         // latent_mlp's per-cell flow on the same VAE 0.0029 / 0.121 / 0.622 /
         // 0.941, fit 1180 s against 868 s: the sets gain nothing on per-cell
         // metrics here (one donor; a set is a random draw of one cell type).
         Options().set("hidden", 256.0).set("shared_time", 1.0), latent_training()});
    add({"latent_ssm", "latent_split", "ssm", "linear", "latent", "flow",
         "count VAE + flow on its latent code split into tokens, bidirectional state-space blocks "
         "(S4D by default, Mamba-style selective scan with ssm_layer = 'mamba'; seed design section 6)",
         Options().set("n_tokens", 8.0).set("token_dim", 128.0), latent_training()});
    return t;
  }();
  return table;
}

// Settings every model has, whatever its stages.
Options shared_defaults() {
  return Options().set("seed", 1.0).set("device", "cpu");
}

// Settings of every model with a generative (flow / diffusion) stage.
Options generative_defaults() {
  Options o;
  o.set("cfg_dropout", 0.1);  // fraction of covariates replaced by "null" in training
  // Gene-wise skip of x_t into the prediction (models/composed_network.hpp).
  // On the example data it lowers the held-out flow loss from 1.92 to 1.52
  // (latent_tokens) and from 1.95 to 1.52 (state_mlp, which without it
  // memorises the training cells within 2 epochs).
  o.set("input_skip", 1.0);
  return o;
}

}  // namespace

std::vector<std::string> composition_names() { return registry_names(composition_table()); }

const Composition& composition(const std::string& name) {
  return registry_entry(composition_table(), name, "architecture");
}

Options composition_defaults(const std::string& architecture, const std::string& objective) {
  const Composition& c = composition(architecture);
  const std::string chosen = objective.empty() ? c.objective : objective;
  if (c.objective.empty() && !objective.empty()) {
    throw std::invalid_argument("architecture '" + architecture + "' has no generative stage: leave 'objective' unset");
  }
  Options o = shared_defaults();
  std::vector<Options> layers;
  if (c.space == "latent") layers.push_back(CountVaeSettings::defaults());
  // What a latent model learns: draws from the posteriors or their means (api/latent_model.hpp).
  // guidance_scale: what generate() uses unless told otherwise. On held-out
  // PBMC3k cells latent_mlp scored MMD 0.0023 / condition accuracy 0.87 at
  // 1, 0.0018 / 0.95 at 2 and 0.0023 / 0.97 at 3 (KL weight 1). At the KL
  // weight of 2, seeds 1-3, MMD / kNN AUC / condition accuracy 0.0024 /
  // 0.575 / 0.931 at 2, 0.0024 / 0.594 / 0.954 at 2.5 (real training cells:
  // 0.877): past 2, cells get more typical than real ones, and less real.
  if (c.space == "latent" && !c.objective.empty()) {
    layers.push_back(Options().set("latent_codes", "sample").set("guidance_scale", 2.0));
  }
  if (!c.tokenizer.empty()) layers.push_back(tokenizer_defaults(c.tokenizer));
  if (!c.backbone.empty()) layers.push_back(backbone_defaults(c.backbone));
  if (!c.decoder.empty()) layers.push_back(decoder_defaults(c.decoder));
  if (!chosen.empty()) {
    layers.push_back(generative_defaults());
    layers.push_back(objective_defaults(chosen));
  }
  layers.push_back(c.overrides);
  for (const Options& layer : layers) o = o.merged(layer, /*known_only=*/false);
  o.set("architecture", architecture);
  if (!chosen.empty()) o.set("objective", chosen);
  return o;
}

Options composition_train_options(const std::string& architecture) {
  Options o;
  // Learning rate measured on held-out cells of the example data (100
  // epochs, seed 1; MMD / condition accuracy): state_mlp 0.053 / 0.23 at
  // 1e-4, 0.023 / 0.62 at 3e-4, 0.010 / 0.77 at 1e-3, 0.010 / 0.79 at 3e-3
  // (seed 2: 0.055 / 0.20, -, 0.0089 / 0.78, 0.0073 / 0.81: its row sets
  // 3e-3); latent_tokens (16 x 64 tokens, 4 layers) 0.030 / 0.53, 0.017 /
  // 0.69, 0.015 / 0.71, 0.014 / 0.76: 1e-3, within noise of 3e-3, which the
  // deeper default DiT was not measured at.
  o.set("epochs", 100.0).set("batch_size", 128.0).set("learning_rate", 1e-3)
      .set("weight_decay", 0.01).set("warmup_fraction", 0.05).set("min_lr_ratio", 0.1)
      .set("grad_clip", 1.0).set("ema_decay", 0.999)
      .set("patience", 10.0)  // gene-space models: unless given, the objective's default_patience()
      .set("validation_fraction", 0.1).set("seed", 1.0)
      .set("precision", "float32");  // of matrix products: runtime/matmul_precision.hpp
  return o.merged(composition(architecture).training, /*known_only=*/false);
}

Options complete_spec(const Options& user_spec) {
  const std::string architecture = user_spec.text("architecture", "latent_tokens");
  const std::string objective = user_spec.text("objective", "");
  return composition_defaults(architecture, objective).merged(user_spec, /*known_only=*/true);
}

}  // namespace exprflow
