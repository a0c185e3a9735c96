# exprflow evaluation: the latent-token model against the built-in baselines
# on held-out cells of the bundled PBMC data, plus what its tokens encode.
#   Rscript inst/scripts/compare_pbmc.R [output-folder] [epochs]
# Prints the tidy comparison table (wide) and the top Hallmark set per token,
# and writes the plots. Takes a few minutes on 2 CPU cores.
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1) args[[1]] else "exprflow-compare"
epochs <- if (length(args) >= 2) as.integer(args[[2]]) else 60L
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

sce <- example_pbmc()
model_settings <- list(architecture = "latent_tokens", epochs = epochs, batch_size = 64,
                       learning_rate = 1e-3, patience = 15, n_tokens = 16, token_dim = 64,
                       n_layers = 4, n_heads = 4, hidden = 512)
comparison <- compare_models(sce, models = list(latent_tokens = model_settings),
                             condition = "cell_type", test_fraction = 0.25, seed = 1,
                             generate_args = list(steps = 50, guidance_scale = 2), noise_level = 0.5,
                             verbose = TRUE)
options(width = 150)
print(comparison)
write.csv(as.data.frame(unclass(comparison))[, 1:6], file.path(out_dir, "comparison.csv"), row.names = FALSE)
ggplot2::ggsave(file.path(out_dir, "comparison.png"), plot(comparison), width = 12, height = 9)
ggplot2::ggsave(file.path(out_dir, "cells_umap.png"),
                plot_cells(attr(comparison, "real"), attr(comparison, "generated"), condition = "cell_type",
                           method = "umap", color_by = "condition"), width = 10, height = 7)

# Token interpretation on a model fitted to all cells with the same settings.
model <- do.call(fit_expression_model, c(list(x = sce, condition = "cell_type", verbose = FALSE),
                                         model_settings))
hallmark <- file.path("..", "shared", "data", "genesets_msigdb", "human_hallmark_v2025.gmt")
if (file.exists(hallmark)) {
  for (method in c("weights", "gradient")) {
    enrichment <- token_enrichment(model, hallmark, x = sce, method = method, n_top = 100)
    best <- do.call(rbind, lapply(split(enrichment, enrichment$token), utils::head, 1))
    cat(sprintf("\nTop Hallmark set per token (%s loadings, top 100 genes):\n", method))
    print(best[, c("token", "gene_set", "overlap", "set_size", "p_adjusted")], row.names = FALSE)
    cat(sprintf("tokens with a set at BH < 0.05: %d of %d\n", sum(best$p_adjusted < 0.05), nrow(best)))
  }
}
activity <- token_activations(model, sce, condition = "cell_type")
top <- do.call(rbind, lapply(split(activity, activity$token), function(d) d[which.max(d$z_score), ]))
cat("\nMost specific cell type per token (z-score of mean activation):\n")
print(top[, c("token", "condition", "z_score")], row.names = FALSE)
