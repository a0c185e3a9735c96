# inst/scripts/connectivity_cv.R
#
# Region-level cross-validation of the connectivity models on the real
# Desikan-Killiany data: the table of the closing note of issue 4.
#
# Run from the package source root (the data sit beside it in ../shared/data):
#   R_LIBS=.Rlib Rscript inst/scripts/connectivity_cv.R [data_dir] [out_dir]
#
# Data: DK 68 CORTICAL regions (the 14 subcortical regions are left out to keep
# the run short; R_frontalpole and R_temporalpole have no AHBA sample, so 66
# regions and 66 x 65 = 4,290 ordered pairs remain), AHBA expression of the
# 121 genes with differential stability r > 0.8, HCP functional (FC) and
# structural (SC) connectivity, region centroids.
# Design: 5 random region folds (seed 1); a model is fitted on pairs whose both
# regions are outside the fold (10% of those regions validate for early
# stopping) and tested on every pair with a held-out region ("any") and,
# separately, on pairs of two held-out regions ("both").
# Models: cross_attention (seed design), the three comparison models, the three
# baselines, and the permuted null (cross_attention on expression whose rows
# were permuted among regions). The 2-core CPU is slow, so the neural models
# are small (settings printed below) and trained for few epochs; gene vectors
# are learned (no Gene2Vec file here). On FC the cross-attention model is also
# run with the two derived gene embeddings (single-cell co-expression of the
# PBMC3k + Zheng donor A cells; Reactome + Hallmark gene-set membership).

suppressPackageStartupMessages(library(exprflow))
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else file.path("..", "shared", "data")
out_dir <- if (length(args) >= 2) args[2] else tempdir()
stopifnot(dir.exists(file.path(data_dir, "brain_ahba_hcp")))
started <- Sys.time()

nn_settings <- list(d_model = 16, n_layers = 1, n_heads = 2, mlp_ratio = 2, head_hidden = "64,32")
fit_settings <- list(epochs = 8, batch_size = 128, learning_rate = 1e-3, patience = 3)
neural <- c("cross_attention", "self_attention_chunks", "self_attention_chunks_pooled", "gene_self_attention")
baselines <- c("cge_linear", "distance_decay", "bilinear")
folds <- 5

cat("exprflow connectivity CV: DK 68 cortical regions, 121 genes (AHBA r > 0.8),", folds, "random region folds\n")
cat("neural settings:", paste(names(nn_settings), unlist(nn_settings), sep = " = ", collapse = ", "), "\n")
cat("training:", paste(names(fit_settings), unlist(fit_settings), sep = " = ", collapse = ", "),
    "(validation_fraction = 0.1 of the training regions)\n")
print(exprflow_info())

# ------------------------------------------------------------ gene embeddings
read_counts <- function(dir) {
  m <- methods::as(Matrix::readMM(file.path(dir, "matrix.mtx.gz")), "CsparseMatrix")
  rownames(m) <- make.unique(readLines(file.path(dir, "genes.tsv")))
  colnames(m) <- readLines(file.path(dir, "barcodes.tsv"))
  m
}
brain_fc <- read_brain_data(file.path(data_dir, "brain_ahba_hcp"), "dk", "fc", subcortex = FALSE, stability = "0.8")
genes <- colnames(brain_fc$expression)
genes_r06 <- colnames(read_brain_data(file.path(data_dir, "brain_ahba_hcp"), "dk", "fc", stability = "0.6")$expression)
pbmc3k <- read_counts(file.path(data_dir, "scrna_pbmc3k_seurat"))
donor_a <- read_counts(file.path(data_dir, "scrna_pbmc_frozen_donorA_zheng2017"))
common <- intersect(rownames(pbmc3k), rownames(donor_a))
cells <- cbind(pbmc3k[common, ], donor_a[common, ])
sets <- c(read_gmt(file.path(data_dir, "genesets_msigdb", "human_reactome_v2025.gmt")),
          read_gmt(file.path(data_dir, "genesets_msigdb", "human_hallmark_v2025.gmt")))
coverage <- function(emb) sum(rowSums(is.na(emb)) == 0)
emb_coexpr <- suppressMessages(gene_embeddings_coexpression(cells, dim = 200, genes = genes))
emb_sets <- suppressMessages(gene_embeddings_gene_sets(sets, genes = genes, dim = 200))
cov_06 <- c(coexpression = coverage(suppressMessages(gene_embeddings_coexpression(cells, 200, genes_r06))),
            gene_sets = coverage(suppressMessages(gene_embeddings_gene_sets(sets, genes_r06, 200))))
cat(sprintf("\ngene embedding coverage (genes with a vector):\n  co-expression (%d PBMC cells): %d / %d (r0.8), %d / %d (r0.6)\n  gene sets (%d Reactome + Hallmark sets): %d / %d (r0.8), %d / %d (r0.6)\n",
            ncol(cells), coverage(emb_coexpr), length(genes), cov_06[["coexpression"]], length(genes_r06),
            length(sets), coverage(emb_sets), length(genes), cov_06[["gene_sets"]], length(genes_r06)))

# ------------------------------------------------------------------------ CV
run_cv <- function(brain, models, gene2vec = NULL, null = "cross_attention") {
  model_args <- stats::setNames(rep(list(nn_settings), sum(models %in% neural)), models[models %in% neural])
  do.call(cross_validate_connectivity,
          c(list(brain$expression, brain$connectivity, brain$coords, models = models, scheme = "random",
                 folds = folds, permuted_null = null, gene2vec = gene2vec, seed = 1, model_args = model_args,
                 test_pairs = c("any", "both"), verbose = TRUE), fit_settings))
}
results <- list()
for (modality in c("fc", "sc")) {
  brain <- read_brain_data(file.path(data_dir, "brain_ahba_hcp"), "dk", modality, subcortex = FALSE, stability = "0.8")
  cat(sprintf("\n== %s: %d regions, %d with expression ==\n", toupper(modality), nrow(brain$expression),
              sum(rowSums(is.na(brain$expression)) == 0)))
  cv <- run_cv(brain, c(neural, baselines))
  cv$modality <- toupper(modality)
  cv$model[cv$null] <- paste(cv$model[cv$null], "(permuted null)")
  results[[modality]] <- as.data.frame(unclass(cv))
  if (modality == "fc") {
    for (variant in c("coexpression", "gene_sets")) {
      emb <- if (variant == "coexpression") emb_coexpr else emb_sets
      extra <- run_cv(brain, "cross_attention", gene2vec = emb, null = FALSE)
      extra$modality <- "FC"
      extra$model <- paste0("cross_attention + ", variant, " vectors")
      results[[paste0("fc_", variant)]] <- as.data.frame(unclass(extra))
    }
  }
}
all <- do.call(rbind, results)
rownames(all) <- NULL
utils::write.csv(all, file.path(out_dir, "connectivity_cv_folds.csv"), row.names = FALSE)

ms <- function(x) sprintf("%.3f \u00b1 %.3f", mean(x), stats::sd(x))
table <- do.call(rbind, lapply(split(all, list(all$modality, all$model), drop = TRUE), function(s) {
  a <- s[s$test_pairs == "any", ]
  b <- s[s$test_pairs == "both", ]
  data.frame(modality = s$modality[1], model = s$model[1], pearson_any = ms(a$pearson),
             spearman_any = ms(a$spearman), pearson_both = ms(b$pearson),
             train_s_per_fold = sprintf("%.1f", mean(a$train_seconds)), stringsAsFactors = FALSE)
}))
order_models <- c(neural, "cross_attention (permuted null)", "cross_attention + coexpression vectors",
                  "cross_attention + gene_sets vectors", baselines)
table <- table[order(table$modality, match(table$model, order_models)), ]
rownames(table) <- NULL
cat("\nRegion-level CV (5 random region folds), mean \u00b1 sd over folds; DK 68 cortical, 121 genes\n")
cat("pearson_any: test pairs with at least one held-out region (~1,600 per fold);",
    "pearson_both: pairs of two held-out regions (~160 per fold)\n")
print(table, row.names = FALSE, right = FALSE)
utils::write.csv(table, file.path(out_dir, "connectivity_cv_table.csv"), row.names = FALSE)
cat(sprintf("\nwritten to %s; total time %.1f min\n", out_dir,
            as.numeric(difftime(Sys.time(), started, units = "mins"))))
