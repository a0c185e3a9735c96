#' Fit a generative model of gene expression
#'
#' Trains a generative model on raw counts in the C++ core. Cells are
#' library-size normalised and log1p transformed in C++, minibatch by
#' minibatch (sparse input is never densified as a whole), standardised per
#' gene, and a network is trained with the architecture's objective:
#' rectified flow / flow matching (`objective = "flow"`: the network predicts
#' the velocity of the straight path from a cell to Gaussian noise) or DDPM
#' (`objective = "ddpm"`: v-prediction by default, eps and x0 available;
#' learned reverse variance). A seeded, condition-stratified
#' fraction of the cells is held out to measure a validation loss after every
#' epoch; training stops early when it has not improved for `patience`
#' epochs, and the model keeps the weights of its best epoch. Sampling uses an
#' exponential moving average (EMA) of the weights.
#'
#' Architectures (see [expression_architectures()], which lists each one's
#' tokenizer, backbone, decoder and default objective):
#' * `"latent_tokens"` (DDPM by default): an MLP encoder maps each cell's
#'   expression to `n_tokens` learned tokens of width `token_dim`; `n_layers`
#'   DiT blocks with adaLN-Zero, modulated by the time and the condition,
#'   process them; an MLP decoder maps the tokens back to genes. Defaults:
#'   64 tokens x 256, 8 layers, 8 heads, hidden width 2048. Every DiT
#'   backbone (this one, `"pathway_tokens"`, `"rank_tokens"`,
#'   `"set_tokens"`, `"latent_dit"`, ...) takes the condition by
#'   `condition_path`: `"adaln"` (default; the sum of the covariate
#'   embeddings modulates every block with the time), `"cross_attention"`
#'   (each covariate is a token that every block cross-attends to; the time
#'   alone modulates) or `"tokens"` (the covariate tokens join the sequence).
#'   On held-out PBMC3k (`latent_dit`, seed 1, `inst/scripts/compare_latent.R
#'   pbmc3k DIR 1 latent_dit PATH condition_path=...`) the three are within
#'   one seed's noise: RBF MMD 0.0031 / 0.0028 / 0.0028, energy distance
#'   0.132 / 0.117 / 0.119, kNN AUC 0.584 / 0.587 / 0.563, condition accuracy
#'   0.939 / 0.930 / 0.928 (adaLN / cross-attention / tokens).
#' * `"state_mlp"` (flow by default): no tokens; the expression vector is
#'   projected to `hidden` (512) units and transformed by `n_layers` (3)
#'   residual MLP blocks with FiLM modulation by time and condition (dropout
#'   0.1). The baseline every token model must beat; [compare_models()]
#'   includes it.
#' * `"pathway_tokens"` (flow by default; seed design Option 2): one token
#'   per gene set of `gene_sets` (a named list of gene vectors, e.g.
#'   [read_gmt()] of an MSigDB GMT or [example_gene_sets()], or the path of a
#'   GMT file), each a learned linear projection, of width `token_dim` (64),
#'   of its member genes. `gene_sets = "nmf"` learns `n_modules` (20) modules
#'   instead, by non-negative matrix factorisation of the training cells'
#'   log-normalised expression (in C++; at most 5,000 cells, sampled with
#'   `seed`): a gene joins each module that carries at least 30% of its
#'   loading; the tokens are named `nmf_1`, `nmf_2`, .... Sets with fewer than `min_set_genes` (5) of the
#'   data's genes are dropped; the genes in no set share one more token,
#'   `residual_genes` (with verbose, the fit says how many). With
#'   `summary_token = 1` (the default) one more token, `summary`, is a
#'   learned linear map of the whole state, as `rank_tokens`' (below): each
#'   other token sees one set alone. `n_layers` (4)
#'   DiT blocks (`n_heads` 4) over the set tokens; each token decodes its own
#'   genes, and a gene in several sets gets the mean of their predictions
#'   (plus the summary token's own map to every gene).
#'   [token_loadings()] and [token_activations()] name the tokens after their
#'   sets. Memory grows with the number of (set, gene) memberships, not with
#'   sets x genes. On held-out PBMC3k (Hallmark, seed 1,
#'   `inst/scripts/compare_latent.R`) the summary token moves RBF MMD /
#'   energy distance / kNN AUC / condition accuracy / correlation distance
#'   from 0.0061 / 0.240 / 0.684 / 0.901 / 0.071 to 0.0056 / 0.223 / 0.649 /
#'   0.846 / 0.067, ahead of the independent-NB baseline (0.0095 / 0.359 /
#'   0.745 / 0.913 / 0.073) and the copula (0.0091 / 0.351 / 0.658 / 0.825 /
#'   0.067) on the first three, behind the independent NB on condition
#'   accuracy (real held-out cells score 0.878). Over seeds 1-3: 0.0057 +/-
#'   0.0003 / 0.225 +/- 0.014 / 0.647 +/- 0.008 / 0.879 / 0.070, against
#'   0.0098 / 0.365 / 0.734 / 0.901 / 0.073 (independent NB) and 0.0087 /
#'   0.329 / 0.650 / 0.837 / 0.068 (copula): ahead of both on the first
#'   three, narrowly on kNN AUC (it loses seed 3, 0.654 against 0.648).
#'   Models saved before the setting load without it.
#' * `"grn_attention"` (flow by default; seed design Option 3): one token
#'   per gene, its learned embedding plus an embedding of its value (width
#'   `token_dim`, 32); `n_layers` (2) DiT blocks (`n_heads` 2) whose attention
#'   runs only along the edges of the regulatory network `grn` (a data.frame
#'   of regulator -> target pairs, e.g. [read_grn()] of TRRUST or DoRothEA, or
#'   the path of such a TSV file): each gene attends to its regulators and to
#'   itself. A network names few of a data set's genes (TRRUST touches 207
#'   of PBMC3k's 2,000 most variable genes); with `cell_node = TRUE` one
#'   more token stands for the whole cell: every gene attends to it as well,
#'   and it attends to every gene. It is on by default (`cell_node = FALSE`
#'   leaves it out): on held-out PBMC3k (TRRUST, seed 1) it lowered RBF MMD
#'   from 0.0070 to 0.0056, energy distance from 0.246 to 0.204 and kNN AUC
#'   from 0.742 to 0.672 (NB copula 0.0093 / 0.351 / 0.658), condition
#'   accuracy went from 0.948 to 0.918, and fitting took 22% longer. Over
#'   seeds 1-3 with the node, `inst/scripts/compare_latent.R`: MMD 0.0063,
#'   energy distance 0.234, kNN AUC 0.663, condition accuracy 0.925,
#'   against the NB copula's 0.0089 / 0.329 / 0.650 / 0.837 on the same
#'   splits (it wins all four on seed 2; kNN AUC 0.672 / 0.640 / 0.677
#'   against 0.658 / 0.643 / 0.648), and the independent NB baseline's
#'   0.0102 / 0.365 / 0.734 / 0.901; a fit took about 70 minutes on 2 cores
#'   beside another. The cell node starts as a learned weighted sum of the
#'   gene tokens (each gene and token dimension its own weight;
#'   `cell_node_summary = TRUE`, the default): the tokens are affine in each
#'   gene's value, so that start is a linear map of the whole cell in which
#'   every gene counts by its own weights, where the genes' mean token (the
#'   start before, `cell_node_summary = FALSE`) carries little more than the
#'   cell's mean value into the first block. On held-out PBMC3k (TRRUST, seed
#'   1, the same split) it moved RBF MMD / energy distance / kNN AUC /
#'   condition accuracy / correlation distance from 0.0058 / 0.272 / 0.687 /
#'   0.918 / 0.071 to 0.0045 / 0.205 / 0.631 / 0.902 / 0.066, ahead of the
#'   copula (0.0091 / 0.351 / 0.658 / 0.825 / 0.067) and the independent-NB
#'   baseline (0.0095 / 0.359 / 0.745 / 0.913 / 0.073) on the first three
#'   and on correlation distance. Models saved before the setting load with
#'   the mean. Time
#'   and memory grow with the number of edges (and genes), not with genes
#'   squared (a fused C++ kernel on the CPU). Each gene's token is read out to
#'   its value by that gene's own linear map (`per_gene_weights = TRUE`;
#'   `FALSE` shares one map among the genes, as models saved before the
#'   setting do). grn_attention learns the condition slowly, so it trains
#'   at `learning_rate = 1e-2`: after 20 epochs on the example data the
#'   centred correlation of generated to real per-type mean profiles (B /
#'   CD14+ Mono / Naive CD4 T / NK) was 0.84 / 0.93 / 0.85 / 0.85 at 1e-2,
#'   0.35 / 0.72 / 0.59 / 0.08 at 3e-3 and at most 0.09 at 1e-3 (state_mlp
#'   0.92 / 0.96 / 0.92 / 0.89). On held-out PBMC3k cells at the package
#'   defaults before the cell node was on (TRRUST, seeds 1-3,
#'   `inst/scripts/compare_latent.R`) it beat
#'   the independent-NB baseline on RBF MMD (0.0073 against 0.0102), energy
#'   distance (0.26 against 0.37) and condition accuracy (0.946 against
#'   0.901), and lost kNN AUC narrowly (0.741 against 0.734); its embedding
#'   is far below PCA (kNN accuracy 0.49 against 0.90; with the node, seeds
#'   2-3, 0.55 and 0.50). Every op holds a (cells, genes,
#'   `token_dim`) tensor; from 10,000 genes the blocks recompute their
#'   activations in backward (`activation_checkpointing = "auto"`; `TRUE` or
#'   `FALSE` decides at any size) and training takes 32 cells a step: at
#'   20,000 genes and 100,000 edges (plus the cell node's 40,001) a step
#'   peaks at 2.9 GB resident with the package's memory policy (large blocks
#'   kept for reuse, see [exprflow_info()]) and at 2.1 GB with
#'   `options(exprflow.reuse_memory = FALSE)` set before loading, which
#'   trains 2.5 times slower (`bench_compositions --genes 20000
#'   --architecture grn_attention --sample-cells 0`, with and without
#'   `--malloc-default`; before `cell_node_summary`). Measured again with
#'   it (`--batch 32 --steps 1 --set cell_node_summary=0` or `=1`, beside
#'   another process): 3.8 GB without its weights (more than the 2.9 GB
#'   above, a difference not yet traced) and 4.2 GB with them under the
#'   package's memory policy, 5.5 and 5.8 GB with LibTorch's blocks freed
#'   to the heap (`--no-block-cache`); at that size
#'   `cell_node_summary = FALSE` saves those 0.3-0.4 GB.
#'   At 2,000 genes recomputing saved nothing measurable (peak 1.30 against
#'   1.32 GB) and made training 1.7 times slower.
#' * `"rank_tokens"` (flow by default; seed design Option 4, Geneformer
#'   style): a cell is the sequence of its `n_top` (128) highest-valued
#'   genes, strongest first, each token the gene's learned embedding plus
#'   embeddings of its value and of its rank position (width `token_dim`,
#'   64), then (`summary_token = 1`, the default) one token that is a
#'   learned linear map of the whole state, so that attention also sees the
#'   genes outside the sequence (as scDiVa's latent anchor token);
#'   `n_layers` (4) DiT blocks (`n_heads` 4). Which genes make the
#'   sequence follows the cell's noisy state at every step. Each token is
#'   read back to its own gene, and every gene also gets a prediction from
#'   the pooled sequence and from the summary token. Models saved before
#'   the setting load without the summary token. The tokens are ranks, not
#'   parts of a cell:
#'   [token_loadings()] does not apply. It trains with batches of 32 cells at
#'   learning rate 1e-2 by default: on held-out example data (seed 1) RBF
#'   MMD 0.025 against 0.069 at batch 128 and 1e-3 (the default before),
#'   energy distance 0.87 against 1.93, kNN AUC 0.805 against 0.975,
#'   condition accuracy 0.79 against 0.62, in the same time (about 400 s);
#'   it still loses to the independent-NB baseline (0.0073 / 0.27 / 0.654 /
#'   0.86). On held-out PBMC3k (seeds 1-3, `inst/scripts/compare_latent.R`)
#'   the new defaults score RBF MMD 0.0282, energy distance 1.01, kNN AUC
#'   0.834, condition accuracy 0.844 and embedding label transfer 0.61,
#'   against 0.0329 / 1.10 / 0.886 / 0.802 / 0.45 at the earlier ones; they
#'   still lose to the independent-NB baseline on every metric (0.0102 /
#'   0.365 / 0.734 / 0.901) and to the copula (0.0089 / 0.329 / 0.650 /
#'   0.838); PCA transfers labels at 0.90. With matched library sizes and
#'   the gene calibration (seed 1) it scores 0.0148 / 0.559 / 0.793 / 0.915,
#'   still behind the independent-NB baseline (0.0095 / 0.359 / 0.745 /
#'   0.913) on the distribution metrics; a hidden layer between the pooled
#'   sequence and the genes did not change that (0.0144 / 0.541 / 0.790).
#'   The summary token did (same split): RBF MMD 0.0051, energy distance
#'   0.204, kNN AUC 0.632, correlation distance 0.061, ahead of both the
#'   independent-NB baseline and the copula (0.0091 / 0.351 / 0.658 /
#'   0.067), at condition accuracy 0.872 (independent NB 0.913, copula
#'   0.825); its embedding transfers labels at 0.57 (PCA 0.91). Over seeds
#'   1-3 (mean +/- sd): 0.0057 +/- 0.0005 / 0.227 +/- 0.022 / 0.615 +/- 0.026 /
#'   0.888 / 0.063, against 0.0098 / 0.365 / 0.734 / 0.901 / 0.073 for the
#'   independent-NB baseline and 0.0087 / 0.329 / 0.650 / 0.837 / 0.068 for
#'   the copula (MMD / energy / kNN AUC / condition accuracy / correlation
#'   distance).
#' * `"set_tokens"` (flow by default; seed "Option C", scLDM's set
#'   pooling): each gene a token (its embedding plus an embedding of its
#'   value, no positions), pooled into `n_tokens` (16) latent tokens of width
#'   `token_dim` (64) by cross-attention from learned seeds (`pool_heads` 4),
#'   so the summary does not depend on the order of the genes; `n_layers` (4)
#'   DiT blocks (`n_heads` 4); each gene's learned query attends back to the
#'   tokens and is read out to its value. With `summary_token = 1` (the
#'   default) one more token follows the pooled ones: a learned linear map
#'   of the whole state, as `rank_tokens`' (pooling is a softmax-weighted
#'   mean of gene tokens, in which a gene's value enters through one shared
#'   direction); the genes' queries attend to it too, and it is read to
#'   every gene by a map of its own. On held-out PBMC3k (seed 1,
#'   `inst/scripts/compare_latent.R`) it moves RBF MMD / energy distance /
#'   kNN AUC / condition accuracy / correlation distance from 0.0087 / 0.326
#'   / 0.787 / 0.945 / 0.076 to 0.0054 / 0.217 / 0.667 / 0.866 / 0.069,
#'   ahead of the independent-NB baseline (0.0095 / 0.359 / 0.745 / 0.913 /
#'   0.073) on all but condition accuracy, and of the copula (0.0091 / 0.351
#'   / 0.658 / 0.825 / 0.067) on MMD and energy distance only; the embedding's
#'   kNN label transfer rises from 0.38 to 0.83 (PCA 0.91). Seed 2: 0.0055
#'   / 0.212 / 0.640 / 0.890 / 0.073 (from 0.0088 / 0.320 / 0.762 / 0.941 /
#'   0.081), against 0.0106 / 0.389 / 0.716 / 0.889 / 0.074 (independent
#'   NB) and 0.0093 / 0.349 / 0.643 / 0.822 / 0.068 (copula): ahead of both
#'   on the first four but for the copula's correlation distance. Seed 3:
#'   0.0059 / 0.238 / 0.668 / 0.895 / 0.070, against 0.0094 / 0.347 / 0.742
#'   / 0.902 / 0.073 and 0.0075 / 0.288 / 0.648 / 0.866 / 0.068. Over seeds
#'   1-3, 0.0056 / 0.222 / 0.658 / 0.884 / 0.071 against 0.0098 / 0.365 /
#'   0.734 / 0.901 / 0.073 (independent NB) and 0.0087 / 0.329 / 0.650 /
#'   0.837 / 0.068 (copula): ahead of both on MMD and energy distance,
#'   behind the copula on kNN AUC (it loses seeds 1 and 3). Models saved
#'   before the setting load without it. [token_activations()] and
#'   [token_loadings()] with `method = "gradient"` interpret the tokens (the
#'   last is the summary token).
#'   It trains with batches of 32 cells at learning rate 1e-2 by default: on
#'   held-out example data (seed 1) RBF MMD 0.0137 against 0.058 at batch
#'   128 and 1e-3 (the default before), energy distance 0.50 against 1.26,
#'   kNN AUC 0.724 against 0.982, condition accuracy 0.85 against 0.52 (fit
#'   about 15 minutes either way); it still loses to the independent-NB
#'   baseline (0.0073 / 0.27 / 0.654 / 0.86). Its pooling and unpooling
#'   layers never build the (cells, genes, `token_dim`) gene tokens' widest
#'   products (the same function, computed by factoring; see the README):
#'   training steps 1.3x and sampling 1.5x faster than before, with the
#'   same held-out scores (0.0138 / 0.51 / 0.726 / 0.85). At the earlier
#'   defaults, on held-out PBMC3k (seeds 1-3, `inst/scripts/compare_latent.R`) it lost to
#'   that baseline on every metric: RBF MMD 0.0181 against 0.0102, energy
#'   distance 0.535 against 0.365, kNN AUC 0.874 against 0.734, condition
#'   accuracy 0.799 against 0.901; its embedding transferred labels at 0.35
#'   (PCA 0.90). At batch 32 and 1e-2 seed 1 scored MMD 0.0137; seed 2
#'   0.0125 / 0.460 / 0.751 / 0.921 against independent NB's 0.0111 /
#'   0.389 / 0.716 / 0.889 (MMD / energy / kNN AUC / condition accuracy);
#'   seed 3 (MMD on the real cells' kernel, see [mmd_rbf()]) 0.0093 / 0.362 /
#'   0.712 / 0.921 against 0.0094 / 0.347 / 0.742 / 0.902, and the NB
#'   copula's 0.0075 / 0.288 / 0.648 / 0.866, which it loses to on the
#'   first three.
#' * `"vae"`: a count VAE alone (scVI's design). The encoder reads
#'   log-normalised expression projected on the first `vae_input_pcs` (50)
#'   principal axes of the training cells (`vae_input = "pca"`; `"log"` reads
#'   all genes: held-out kNN label transfer over 3 seeds 0.899 against 0.883
#'   with `"log"` on PBMC3k, PCA itself 0.901; 0.863 against 0.851 on the
#'   example data, PCA 0.865); the Gaussian posterior's mean is the cell's
#'   embedding; the decoder gives each gene's share of the library (a
#'   softmax), times the cell's OBSERVED library size, with a per-gene
#'   dispersion: `likelihood = "nb"` (default), `"zinb"` or `"poisson"`;
#'   `dispersion = "gene_condition"` for one per gene and condition (with
#'   several covariates, the first one's levels: list the cell type first);
#'   `encode_condition` / `decode_condition` condition the encoder / decoder.
#'   Trained on the ELBO with KL warm-up (`kl_warmup`, a fraction of the
#'   steps; `kl_weight`). A heavier KL weight makes a better embedding and a
#'   worse counterfactual transfer: with `training = list(kl_weight = 2)`
#'   the held-out cells' embedding clusters by cell type at least as well
#'   as PCA (k-means ARI, seeds 1-5: PBMC3k 0.675 against PCA's 0.672 and
#'   0.653 at the default 1; example data 0.680 against 0.613 and 0.640),
#'   the kNN label transfer is unchanged on PBMC3k (0.892 against PCA's
#'   0.903) and level with PCA on the example data (0.866 against 0.867),
#'   but Papalexi 2021's knock-outs transferred by [transfer_cells()] lose
#'   (energy distance 0.203 against 0.177 with one guide held out, 0.209
#'   against 0.183 with a replicate held out). It generates from its N(0, I) prior, which ignores
#'   the condition unless `decode_condition = 1`. Its marginal likelihood
#'   of held-out cells (given the library size alone, importance-sampled,
#'   see [reconstruct_cells()]) beats the independent-NB baseline's, which
#'   knows each cell's type: on PBMC3k (seeds 1-3) -1559 against -1619 nats
#'   per cell (every seed; at the code read off each cell, -1547).
#' * `"latent_mlp"`, `"latent_dit"` (flow by default): the same VAE, then a
#'   conditional flow (or DDPM) on its posterior means, standardised: a
#'   residual MLP with FiLM (`latent_mlp`, CFGen's design) or the latent
#'   code cut into `n_tokens` chunks through DiT blocks (`latent_dit`,
#'   scLDM's). Generation integrates the flow, decodes, and draws counts
#'   from the likelihood with a library size drawn for the condition. One
#'   call trains both stages, with one progress bar each: the VAE with the
#'   `vae_*` settings of `training` (see [training_defaults()]), the latent
#'   model with `epochs`, `batch_size`, `learning_rate`.
#'   `"latent_ssm"` does the same with bidirectional state-space blocks over
#'   the latent tokens (`ssm_layer = "s4d"`, diagonal S4 with FFT
#'   convolution, or `"mamba"`, a selective scan: one fused CPU loop, which
#'   trains 5.8x and samples 10x faster than the chunked LibTorch form it
#'   replaced on the CPU, and is still 2.5x slower than `"s4d"`; on
#'   held-out PBMC3k, seed 1, it scored RBF MMD 0.0028 against S4D's 0.0023
#'   and the independent-NB baseline's 0.0098).
#'   `"latent_grn"` (the seed design's hybrid) runs DiT blocks whose
#'   attention among the latent tokens follows a learned sparse graph:
#'   every ordered pair of tokens has a learned logit, each token attends to
#'   itself and its `graph_degree` (3) strongest sources, weighted by the
#'   logits' sigmoid.
#'   `"latent_pathway"` (the other hybrid) ties the VAE's latent tokens to
#'   gene sets (`gene_sets =`, as for `"pathway_tokens"`): each set's
#'   `latent_per_token` (2) latent values are encoded from that set's genes
#'   alone (genes in no set share a residual token), the decoder reads the
#'   whole code, and the flow runs DiT blocks over one token per set.
#'   [token_activations()] and [token_loadings()] read its encoder's tokens.
#'   `vae_encoder = "set_tokens"` (with `vae_input = "log"`) gives any latent
#'   model scLDM's encoder instead of the MLP: each gene a token (its
#'   embedding plus an embedding of its value), pooled into `vae_set_tokens`
#'   (8) tokens of width `vae_token_hidden` (32) by cross-attention from
#'   learned seeds (`vae_pool_heads` 4), each giving `latent_per_token` (2)
#'   latent values; the latent-split flows get one token per pooled token,
#'   and [token_activations()] and [token_loadings()] with `method =
#'   "gradient"` read them.
#'   `"cells_as_tokens"` (seed "Cells as tokens") turns attention around: each
#'   cell's latent code is one token (width `hidden`, 256) and `n_layers` (4)
#'   DiT blocks (`n_heads` 4) attend across the cells of a set, the cells of
#'   one condition in the minibatch cut into sets of at most `set_size` (32),
#'   so a set of cells is denoised, and generated, jointly; the cells of a set
#'   share one noise time in training (`shared_time = 1`, a setting of both
#'   objectives), as they do in sampling. On held-out PBMC3k cells it is
#'   level with the per-cell `latent_mlp` on the same VAE (MMD 0.0031 against
#'   0.0029, condition accuracy 0.933 against 0.941) at 36% more fit time
#'   (at KL weight 1; at the latent models' default 2, seed 1, it is behind:
#'   MMD 0.0022 against 0.0017, energy distance 0.092 against 0.077).
#'
#'   Defaults of the VAE-based models were chosen on held-out cells of the
#'   example data and PBMC3k (see `inst/scripts/compare_latent.R`): a 16-d
#'   latent, 2 hidden layers of 256, dispersion per gene, VAE learning rate
#'   1e-3 for up to 200 epochs with patience 20 and KL warm-up over the first
#'   quarter of its steps, to a KL weight of 2 under a latent model (1 for
#'   the `"vae"` alone: figures below); the latent flow learns codes drawn from the
#'   posteriors (`latent_codes = "sample"`, the distribution the decoder was
#'   trained on) for 300 epochs at 1e-3, and samples with guidance 2 (on
#'   PBMC3k MMD 0.0023 / 0.0018 / 0.0023 and condition accuracy 0.87 / 0.95 /
#'   0.97 at guidance 1 / 2 / 3, before the KL weight became 2; at 2, seeds
#'   1-3 (`inst/scripts/compare_guidance.R pbmc3k OUT 1,2,3 2,2.5,3`), MMD
#'   0.0024 / 0.0024 / 0.0029, kNN AUC 0.575 / 0.594 / 0.616 and condition
#'   accuracy 0.931 / 0.954 / 0.954 at guidance 2 / 2.5 / 3, where real
#'   training cells score 0.877: more guidance makes cells more typical of
#'   their type than real cells are, and less like them).
#'
#'   Against the stronger `"nb_copula"` baseline ([fit_baseline()]: the
#'   independent negative binomials joined by a Gaussian copula, scDesign3's
#'   model) on held-out PBMC3k (seeds 1-3, means),
#'   `latent_mlp` / `latent_dit` / the copula score RBF MMD (on the real
#'   cells' kernel) 0.0024 / 0.0029 / 0.0087, energy distance 0.101 / 0.119 /
#'   0.329, kNN AUC 0.571 / 0.589 / 0.650, condition accuracy 0.937 / 0.939 /
#'   0.837 and gene-gene correlation distance 0.058 / 0.060 / 0.068: both
#'   beat it everywhere. On the example data (seeds 1-3) `latent_mlp` beats
#'   it everywhere too: MMD 0.0045 against 0.0078, energy distance 0.193
#'   against 0.304, kNN AUC 0.580 against 0.611, condition accuracy 0.863
#'   against 0.815 (but the independent-NB baseline's is 0.878, which
#'   `latent_dit` passes there: 0.0047 / 0.198 / 0.584 / 0.889;
#'   `guidance_scale = 2.5` gives 0.888 at MMD 0.0048 and energy 0.202; real
#'   training cells, the `"training_cells"` reference, score 0.828).
#'   The KL weight of 2 (`training = list(kl_weight = 1)` for the earlier
#'   1) lowered MMD and raised the held-out log-likelihood on every seed:
#'   at 1, `latent_mlp` scored 0.0027 / 0.111 / 0.569 / 0.939 and -1558.5
#'   nats per cell (-1554.4 at 2) on PBMC3k, `latent_dit` 0.0033 / 0.131 /
#'   0.594 / 0.937, and `latent_mlp` 0.0051 / 0.208 / 0.574 / 0.877 on the
#'   example data, where weight 2 costs condition accuracy. On
#'   the 986 control cells of Kang 2018 (740 to train on; seeds 1-3,
#'   `inst/scripts/compare_latent.R kang_control`) `latent_mlp` beats it on
#'   MMD (0.0055 / 0.0062), energy distance (0.207 / 0.237) and kNN AUC
#'   (0.572 / 0.601) and ties condition accuracy (0.869) and correlation
#'   distance (0.0900 / 0.0898); `latent_dit` (0.0052 / 0.192 / 0.583 /
#'   0.874) and `latent_ssm` (0.0059 / 0.217 / 0.575 / 0.870) beat it on
#'   those four too. There the KL weight of 2 costs kNN AUC: at 1,
#'   `latent_mlp` 0.0062 / 0.228 / 0.563 / 0.869, `latent_dit` 0.0059 /
#'   0.219 / 0.553 / 0.869, `latent_ssm` 0.0058 / 0.213 / 0.533 / 0.870.
#'
#' Every architecture adds a gene-wise skip of its noisy input to its
#' prediction, scaled per gene by the time and condition (`input_skip = 1`;
#' EDM's c_skip): near t = 0 each objective's target is close to a multiple
#' of the input, which a network narrower than the number of genes cannot
#' pass through itself. On the example data it lowers the held-out flow loss
#' from 1.92 to 1.52; `input_skip = 0` turns it off.
#'
#' Pressing Ctrl-C / Esc stops training cleanly: the model trained so far is
#' returned with a warning.
#'
#' @param x A SingleCellExperiment, a Seurat object (counts of `assay`), a
#'   dgCMatrix, a dense matrix or a DelayedArray matrix (e.g. an HDF5Array,
#'   streamed from its file) of raw counts, genes x cells,
#'   with gene names as rownames; or the path of a 10x Genomics `.h5` or an
#'   AnnData `.h5ad` file (`X` as a CSR matrix or a dense array, or a CSC
#'   matrix, which is first copied once to CSR in [tempdir()], out of core),
#'   which is streamed: only one offset per cell is held in memory, epochs visit
#'   blocks of neighbouring cells (about one compressed chunk of the file,
#'   at least 64 cells) in a seeded random order, shuffled within 16 blocks
#'   at a time, the next minibatch is read on a background thread, and
#'   `condition` names `obs` columns.
#'   [write_h5ad()] writes such files. Counts held as an untouched
#'   HDF5Array, TENxMatrix or H5ADMatrix (a DelayedArray with no subset or
#'   operation on top) are streamed from their file the same way; any other
#'   DelayedArray is read into memory.
#' @param architecture A registered architecture, see
#'   [expression_architectures()]. The default, `"latent_mlp"` (a count VAE
#'   and a flow on its latent codes), is the best measured here: on held-out
#'   PBMC3k and the example data it beats the independent-NB and copula
#'   baselines on every distribution metric (on Kang 2018's control cells
#'   too; figures above),
#'   where the latent-token DiT (`"latent_tokens"`, the seed design's
#'   model) loses to the independent-NB baseline and trains at about a
#'   sixtieth of the speed (`bench_compositions`, 2,000 genes, batch 128: 37 cells/s
#'   against 2,300 for `latent_mlp`'s flow stage).
#' @param objective `NULL` (the architecture's default), `"flow"` or
#'   `"ddpm"`. Their settings (e.g. `prediction`, `schedule` for DDPM;
#'   `time_distribution`, `ot_pairing` for flow) go in `...`; see
#'   [architecture_defaults()].
#' @param condition `NULL` for an unconditional model, the name of a
#'   column of `colData(x)` / Seurat `meta.data` (e.g. `"cell_type"`), or one
#'   value per cell. Several categorical covariates at once: their column
#'   names (`c("cell_type", "stim")`) or a data.frame with one column per
#'   covariate and one row per cell. Each covariate gets its own embedding
#'   and the model's condition is their sum, so a combination of levels can
#'   be asked for whatever cells it was trained on (how well an unseen
#'   combination is generated is measured, not promised: see the
#'   conditions vignette). A hierarchy (organism > tissue > cell type >
#'   state) is given the same way, one column per level
#'   (`c("tissue", "cell_type")`): the context is the sum of the levels'
#'   embeddings, so a cell type can be asked for in a tissue where no
#'   training cell had it. Training drops each covariate independently
#'   (`cfg_dropout`), so [generate_cells()] can guide each by its own scale.
#'   The validation split is stratified by the combination of levels.
#' @param perturbation `NULL`, or a covariate of perturbation sets: the name
#'   of a cell-data column (or one label per cell) whose labels name what
#'   was perturbed, a combination written with `+` (`"JAK2"`,
#'   `"JAK2+STAT1"`, the CPA / GEARS convention; member order does not
#'   matter). Each member (a knocked-out gene, a drug) gets its own
#'   embedding and a combination is the sum of its members', so
#'   [generate_cells()] and [transfer_cells()] can be asked for a
#'   combination no training cell had, as long as each of its members was
#'   seen (in the VAE's latent arithmetic, `transfer_cells(mode = "shift")`,
#'   each member needs cells of its own: the shift is the sum of the
#'   members' shifts). It comes after the `condition` covariates, has the
#'   column's name and takes part in guidance like them.
#' @param control The label of the unperturbed cells in `perturbation`
#'   (e.g. `"non-targeting"`, `"ctrl"`, `"DMSO"`): the empty set.
#' @param dose `NULL`, or the doses of the perturbations: a cell-data column
#'   name (or one value per cell), a number per cell, or for combinations
#'   one number per member joined by `+` in the order the label names them
#'   (`"10+100"`). Each member's embedding is then scaled by a learned dose
#'   response, a Hill curve `d^h / (d^h + k^h)` per member (monotone, 0 at
#'   dose 0; `k` starts at the median training dose), as CPA does.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`); for an `.h5ad` path, the
#'   layer (`NULL`: `X`). Matrices ignore it.
#' @param epochs Maximum number of passes over the training cells. `NULL`
#'   (default), as `batch_size` and `learning_rate`: the architecture's
#'   default, see [training_defaults()].
#' @param batch_size Cells per optimiser step.
#' @param learning_rate Peak AdamW learning rate (after a linear warm-up over
#'   the first 5% of steps, then cosine decay to 10% of the peak). The
#'   defaults are the best measured on held-out cells of the example data:
#'   3e-3 for `state_mlp` (MMD / condition accuracy 0.053 / 0.23 at 1e-4,
#'   0.023 / 0.62 at 3e-4, 0.010 / 0.77 at 1e-3, 0.010 / 0.79 at 3e-3; a
#'   second seed 0.055 / 0.20, 0.0089 / 0.78, 0.0073 / 0.81 at 1e-4, 1e-3,
#'   3e-3), 1e-3 for the others (`latent_tokens`, 16 x 64 tokens and 4
#'   layers: 0.030 / 0.53, 0.017 / 0.69, 0.015 / 0.71, 0.014 / 0.76 at 1e-4
#'   to 3e-3; the VAE-based models: see above).
#' @param validation_fraction Fraction of cells held out (stratified by
#'   condition) for the validation loss; 0 for none.
#' @param patience Epochs without validation improvement before stopping;
#'   0 disables early stopping. `NULL` (default): 10 for DDPM, 0 for flow.
#'   A flow model's held-out velocity loss starts rising within a few epochs
#'   on ~1,000 cells while its samples keep improving. On the example data,
#'   state_mlp stopped by patience 15 gave MMD 0.081 and condition accuracy
#'   0.26; trained for all 60 epochs it gave 0.015 and 0.89. So flow models
#'   train for all `epochs` by default, still recording the validation loss.
#' @param seed Seed of everything random (initial weights, split, batches,
#'   noise): the same seed gives the same model.
#' @param device `"cpu"`, or `"cuda"` when LibTorch has CUDA (see
#'   [exprflow_info()]).
#' @param verbose Show a progress bar per training stage (steps, epoch,
#'   training loss, last validation loss);
#'   `TRUE` by default in interactive sessions (`interactive()`), as for
#'   every exprflow function with `verbose`.
#' @param ... Architecture settings overriding [architecture_defaults()],
#'   e.g. `n_tokens = 16, token_dim = 64, n_layers = 2`; and what
#'   architectures built on gene sets (`resources` column of
#'   [expression_architectures()]) are built from: `gene_sets`,
#'   `min_set_genes` and `n_modules` (see `"pathway_tokens"`); `grn` (see
#'   `"grn_attention"`).
#' @param training Further training settings: `weight_decay` (0.01),
#'   `warmup_fraction` (0.05), `min_lr_ratio` (0.1), `grad_clip` (1),
#'   `ema_decay` (0.999); for VAE-based models `kl_warmup`, `kl_weight` and
#'   the VAE stage's `vae_epochs`, `vae_batch_size`, `vae_learning_rate`,
#'   `vae_ema_decay`, `vae_patience`. See [training_defaults()].
#'   `precision` (`"float32"`): `"bfloat16"` runs the matrix products of
#'   the network's Linear layers and attention in bfloat16 during training
#'   (forward and backward, accumulated in float; every other operation,
#'   the weights and the optimiser stay float32; products under 4 million
#'   multiply-adds stay float32), and meanwhile gives LibTorch's threads the
#'   cores OpenBLAS had. It pays on CPUs with AVX-512-BF16 or AMX, where
#'   LibTorch's oneDNN multiplies bfloat16 several times faster than float
#'   (`exprflow_info()$bfloat16_fast`); elsewhere it is slower and warns.
#'   Measured on 2 cores with AMX (`bench_compositions --precision`, 2,000
#'   genes, 128 cells a step): training 1.1x (`vae`) to 2.1x
#'   (`latent_tokens`) faster, most models 1.5-1.9x; on held-out PBMC3k
#'   `latent_mlp` scored as in float32 (RBF MMD 0.0018 against 0.0022,
#'   condition accuracy 0.94 against 0.92, kNN AUC 0.546 against 0.548,
#'   reconstruction log-likelihood -1549 both; one seed). Generation has its
#'   own `precision` ([generate_cells()]).
#' @param checkpoint `NULL`, or a folder (created if missing) where the run
#'   keeps a checkpoint: the model, the optimiser's moments, the EMA
#'   weights, the random generators' states, the order of the cells and the
#'   history, rewritten every `checkpoint_every` epochs, when training is
#'   interrupted and when it ends (written to a temporary file and renamed,
#'   so a crash leaves the previous checkpoint whole). [resume_training()]
#'   continues the run from it, in this session or another, and ends on the
#'   same weights as the run left alone (bit for bit on the CPU). Training
#'   across processes (`processes`, `hosts`, `job`) keeps one checkpoint,
#'   written by rank 0 with every rank's random generators, and resumes on
#'   as many processes; with `hosts` the folder must be one that every
#'   machine sees at the same path. A stopped run across processes keeps its
#'   last checkpoint (its workers are stopped, not asked to write one), and
#'   the workers of a `job` that its launcher starts again continue from it.
#' @param checkpoint_every Epochs between checkpoints.
#' @param processes Train data-parallel in this many R worker processes on
#'   this machine (on LibTorch's c10d with its Gloo backend, see
#'   [train_worker()]); this session waits and is not one of them. Each
#'   process takes `batch_size` cells of every minibatch (so a step sees
#'   `processes * batch_size` cells) and the gradients are averaged over
#'   the processes at every step, like one process with a minibatch
#'   `processes` times larger (each process draws its own noise, so the
#'   model is not the same bit for bit; for a deterministic loss it is the
#'   same to float rounding, which the core's tests check). Data held in
#'   memory is written to a temporary `.h5ad` that the workers stream.
#'   Each worker uses one thread. Training is not interruptible from this
#'   session except by stopping it (the workers are then stopped).
#' @param hosts Train data-parallel with one worker per entry, on the
#'   machines these names reach (`"localhost"` is this machine; repeat a
#'   name for several workers on it), started with
#'   [parallel::makePSOCKcluster()] (ssh without a password, and R and
#'   exprflow installed at the same paths on every machine). The workers
#'   meet through a c10d TCPStore served by the first host on a free port,
#'   and otherwise train as with `processes` (which `hosts` replaces).
#'   Beyond this machine, `x` must be the path of an `.h5ad` / `.h5` file
#'   that every machine reads at that path. For clusters with their own
#'   launcher (srun, mpirun, torchrun) see `job`.
#' @param job Instead of training, write a training job to this file (an
#'   `.rds`) for `processes` workers that a cluster's launcher starts, each
#'   running `Rscript -e 'exprflow::train_worker("job.rds")'` (see
#'   [train_worker()]); returns the file's path, invisibly. Data held in
#'   memory is written next to it (`<job>-cells.h5ad`); rank 0 writes the
#'   trained model to `<job>.exprflow`, which [load_model()] reads. The
#'   folder must be seen by every worker.
#' @return An `exprflow_model`: use it with [generate_cells()],
#'   [embed_cells()], [save_model()], [plot_training_history()]. With `job`,
#'   the job file's path (invisibly).
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", condition = "cell_type", epochs = 1,
#'                               n_tokens = 4, token_dim = 16, n_layers = 1,
#'                               n_heads = 2, hidden = 64)
#' model
#' @export
fit_expression_model <- function(x, architecture = "latent_mlp", objective = NULL, condition = NULL,
                                 assay = NULL,
                                 epochs = NULL, batch_size = NULL, learning_rate = NULL,
                                 validation_fraction = 0.1, patience = NULL, seed = 1,
                                 device = c("cpu", "cuda"), verbose = interactive(), ...,
                                 perturbation = NULL, control = NULL, dose = NULL, training = list(),
                                 checkpoint = NULL, checkpoint_every = 1L, processes = 1L, hosts = NULL,
                                 job = NULL) {
  .check_string(architecture, "architecture")
  known <- expression_architectures()$name
  if (!architecture %in% known) {
    stop(sprintf("unknown architecture '%s'; valid: %s", architecture, .first_few(known, 20L)), call. = FALSE)
  }
  if (!is.null(objective)) {
    .check_string(objective, "objective")
    objective <- match.arg(objective, c("flow", "ddpm"))
  }
  options <- .training_options(epochs, batch_size, learning_rate, validation_fraction, patience, seed, training)
  device <- match.arg(device)
  spec_overrides <- list(...)
  if (length(spec_overrides) && (is.null(names(spec_overrides)) || any(!nzchar(names(spec_overrides))))) {
    stop("architecture settings in `...` must be named (e.g. n_tokens = 16)", call. = FALSE)
  }
  resource_args <- spec_overrides[intersect(names(spec_overrides), .resource_arguments)]
  spec_overrides <- spec_overrides[setdiff(names(spec_overrides), .resource_arguments)]
  .warn_reference_blas()

  .check_count(processes, "processes")
  if (!is.null(hosts)) {
    if (!is.character(hosts) || !length(hosts) || anyNA(hosts) || any(!nzchar(hosts))) {
      stop("`hosts` must be machine names (e.g. c(\"node1\", \"node2\") or rep(\"localhost\", 2))", call. = FALSE)
    }
    if (processes != 1L && processes != length(hosts)) {
      stop(sprintf("`processes` (%d) and `hosts` (%d names) disagree: `hosts` gives one process per name",
                   processes, length(hosts)), call. = FALSE)
    }
    processes <- length(hosts)
  }
  if (!is.null(job) && !is.null(hosts)) {
    stop("`job`: a job file is for a cluster's launcher; give `processes`, not `hosts`", call. = FALSE)
  }
  checkpoint_file <- .checkpoint_start(checkpoint, checkpoint_every)
  prepared <- .training_input(x, assay, condition, perturbation, control, dose)
  input <- prepared$input
  perturbed <- prepared$perturbed

  spec <- c(list(architecture = architecture, seed = seed, device = device),
            if (!is.null(objective)) list(objective = objective), spec_overrides)
  resources <- .model_resources(architecture, resource_args, input, seed, verbose)
  pointer <- .cpp_model_create(spec, input$genes, prepared$covariates, resources)
  .cpp_model_annotate(pointer, c(.condition_annotations(input$conditions),
                                 if (!is.null(perturbed)) c(list(perturbation_column = perturbed$name,
                                                                 perturbation_control = perturbed$control),
                                                            if (!is.null(perturbed$dose_column))
                                                              list(dose_column = perturbed$dose_column))))

  if (!is.null(checkpoint_file)) {
    options$checkpoint_every <- checkpoint_every
    .write_checkpoint_call(checkpoint, x, assay, condition, perturbation, control, dose, options, input,
                           processes = processes, hosts = hosts, job = job)
    options$checkpoint <- checkpoint_file
  }
  if (!is.null(job)) {
    return(.write_training_job(job, pointer, x, assay, input, prepared$codes, options, processes))
  }
  .train_model(pointer, x, assay, input, prepared$codes, options, processes, hosts, verbose, checkpoint)
}

# Trains the model in `pointer` where the run asks (one worker per host, n
# worker processes, or this process) and returns the exprflow_model; shared
# by fit_expression_model() and resume_training().
.train_model <- function(pointer, x, assay, input, codes, options, processes, hosts, verbose, checkpoint) {
  if (!is.null(hosts)) {
    return(.new_model(.train_on_hosts(pointer, x, assay, input, codes, options, hosts, verbose)))
  }
  if (processes > 1L) {
    return(.new_model(.train_in_processes(pointer, x, assay, input, codes, options, processes, verbose)))
  }
  report <- .train_with_progress(pointer, input, codes, options, verbose)
  .warn_if_interrupted(report, checkpoint)
  .new_model(pointer)
}

# The cells, their covariates and the covariates' levels as the core takes
# them, from fit_expression_model()'s data arguments (resume_training() calls
# it with the arguments the run was started with).
.training_input <- function(x, assay, condition, perturbation, control, dose) {
  input <- .expression_input(x, assay, condition)
  # The perturbation covariate comes last: library sizes of unseen
  # combinations fall back from the last covariate first.
  perturbed <- .perturbation_input(input, perturbation, control, dose)
  if (!is.null(perturbed)) {
    input$conditions[[perturbed$name]] <- perturbed$labels
    input$condition <- .combined_condition(input$conditions)
  }
  # One covariate keeps the core's name "condition" (the layout of models
  # from before several covariates); several are named by their columns.
  covariates <- lapply(input$conditions, levels)
  codes <- lapply(input$conditions, function(f) as.integer(f) - 1L)
  if (!is.null(perturbed)) {
    attr(covariates[[perturbed$name]], "control") <- perturbed$control
    if (!is.null(perturbed$doses)) {
      attr(covariates[[perturbed$name]], "dose_scale") <- perturbed$dose_scale
      attr(codes[[perturbed$name]], "doses") <- perturbed$doses
    }
  }
  if (length(covariates) == 1L) names(covariates) <- "condition"
  list(input = input, perturbed = perturbed, covariates = covariates, codes = codes)
}

.warn_if_interrupted <- function(report, checkpoint) {
  if (!report$interrupted) return(invisible())
  warning(sprintf("training was interrupted after %d steps; returning the model trained so far%s",
                  as.integer(report$steps),
                  if (is.null(checkpoint)) "" else
                    sprintf(" (resume_training(\"%s\") continues the run)", checkpoint)),
          call. = FALSE)
}

# The core's training options from the R arguments, checked (errors name
# the argument). Settings left NULL are left out: the core then uses the
# architecture's defaults (training_defaults()) and, for patience, the
# objective's. `training` (a named list) overrides; `extra` comes first.
.training_options <- function(epochs, batch_size, learning_rate, validation_fraction, patience, seed, training,
                              extra = list()) {
  if (!is.null(epochs)) .check_count(epochs, "epochs")
  if (!is.null(batch_size)) .check_count(batch_size, "batch_size")
  if (!is.null(learning_rate)) .check_number(learning_rate, "learning_rate", lower = 0)
  .check_number(validation_fraction, "validation_fraction", 0, 0.9)
  if (!is.null(patience)) .check_count(patience, "patience", min = 0)
  .check_count(seed, "seed", min = 0)
  if (!is.list(training)) stop("`training` must be a named list", call. = FALSE)
  if (any(names(training) %in% .group_settings)) {
    stop("`training`: processes are set by the `processes` argument", call. = FALSE)
  }
  if (any(names(training) %in% .checkpoint_settings)) {
    stop("`training`: checkpoints are set by the `checkpoint` and `checkpoint_every` arguments and ",
         "resume_training()", call. = FALSE)
  }
  .check_precision(training$precision, "training$precision")
  utils::modifyList(c(list(validation_fraction = validation_fraction, seed = seed), extra,
                      if (!is.null(epochs)) list(epochs = epochs),
                      if (!is.null(batch_size)) list(batch_size = batch_size),
                      if (!is.null(learning_rate)) list(learning_rate = learning_rate),
                      if (!is.null(patience)) list(patience = patience)), training)
}

# The `precision` argument of the sampling functions (generate, transfer,
# reconstruct): its first choice by default, checked as below.
.sampling_precision <- function(precision) {
  precision <- match.arg(precision, c("float32", "bfloat16"))
  .check_precision(precision, "precision")
  precision
}

# A precision of matrix products ("float32" or "bfloat16") given as
# `argument`, checked; "bfloat16" warns on CPUs where its products are
# emulated (slower than float32).
.check_precision <- function(precision, argument) {
  if (is.null(precision)) return(invisible())
  if (!is.character(precision) || length(precision) != 1L || !precision %in% c("float32", "bfloat16")) {
    stop(sprintf("`%s` must be \"float32\" or \"bfloat16\"", argument), call. = FALSE)
  }
  if (precision == "bfloat16" && !isTRUE(.cpp_runtime_info()$bfloat16_fast)) {
    warning(sprintf(paste0("`%s = \"bfloat16\"`: this CPU has neither AVX-512-BF16 nor AMX (or LibTorch was ",
                           "built without oneDNN), so its bfloat16 matrix products are emulated and slower ",
                           "than float32"), argument), call. = FALSE)
  }
  invisible()
}

# What the model keeps about its covariates beside their levels: the
# column each came from ("condition_column" for one, "condition_columns"
# for several) and the number of input cells per level ("level_count:<level>"
# for one covariate, "level_count:<covariate>=<level>" for several).
.condition_annotations <- function(conditions) {
  if (!length(conditions)) return(list(condition_column = "condition"))
  single <- length(conditions) == 1L
  counts <- unlist(lapply(names(conditions), function(name) {
    table <- table(conditions[[name]])
    stats::setNames(as.list(as.numeric(table)),
                    paste0("level_count:", if (single) "" else paste0(name, "="), names(table)))
  }), recursive = FALSE)
  columns <- if (single) list(condition_column = names(conditions)) else list(condition_columns = names(conditions))
  c(columns, counts)
}

# One progress bar per training stage (latent models train "vae", then
# "latent"); the core restarts its step count with each stage.
.train_with_progress <- function(pointer, input, codes, options, verbose) {
  .cpp_model_train(pointer, input$source, codes, options, .training_progress(verbose, environment()))
}

.blas_warned <- new.env(parent = emptyenv())
.warn_reference_blas <- function() {
  if (isTRUE(.blas_warned$done)) return(invisible())
  info <- .cpp_runtime_info()
  if (isTRUE(info$blas_is_reference)) {
    .blas_warned$done <- TRUE
    warning(.reference_blas_message(info), call. = FALSE)
  }
}
