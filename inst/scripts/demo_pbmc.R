# exprflow demo: the package's main job on the bundled PBMC example data.
#   Rscript inst/scripts/demo_pbmc.R [output-folder]      (or: make demo)
# Holds out a quarter of the cells (stratified by cell type), fits the
# default model (latent_mlp: a count VAE, then a flow in its latent space;
# package defaults) conditioned on cell type on the rest, generates as many
# cells per type as were held out, and measures them against the held-out
# cells beside two baselines fitted on the same cells. Then embeds the
# cells, saves the model and writes the loss curves. About two and a half
# minutes on 2 CPU cores.
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args)) args[[1]] else "exprflow-demo"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

print(exprflow_info())
sce <- example_pbmc()
cat(sprintf("\nExample data: %d genes x %d cells, %d cell types\n", nrow(sce), ncol(sce),
            nlevels(sce$cell_type)))

# A quarter of each cell type is held out: the model never sees these cells.
set.seed(1)
held_out <- unlist(lapply(split(seq_len(ncol(sce)), sce$cell_type),
                          function(cells) cells[sample.int(length(cells), round(length(cells) / 4))]))
train <- sce[, -held_out]
test <- sce[, held_out]
cat(sprintf("Training on %d cells, %d held out\n\n", ncol(train), ncol(test)))

t0 <- Sys.time()
model <- fit_expression_model(train, condition = "cell_type", verbose = TRUE)
cat(sprintf("Training took %.0f s\n", as.numeric(difftime(Sys.time(), t0, units = "secs"))))
print(model)

# As many generated cells per type as were held out, and the same from the
# baselines: independent negative binomials per gene and cell type, and the
# same joined by a Gaussian copula (scDesign3's model of gene-gene correlation).
wanted <- table(test$cell_type)
generated <- list(latent_mlp = generate_cells(model, condition = wanted, seed = 1))
for (type in c("independent_nb", "nb_copula")) {
  baseline <- fit_baseline(train, type, condition = "cell_type")
  generated[[type]] <- generate_cells(baseline, condition = wanted, seed = 1)
}
print(generated$latent_mlp)

# Each set against the held-out cells, with the package's own metrics.
shown <- c(mmd_rbf = "RBF MMD", energy_distance = "energy distance",
           knn_auc = "kNN real-vs-generated AUC (0.5 best)", condition_accuracy = "cell-type accuracy")
scores <- sapply(generated, function(cells) {
  metrics <- generation_metrics(test, cells, condition = "cell_type", seed = 1)
  metrics$value[match(names(shown), metrics$metric)]
})
rownames(scores) <- shown
cat("\nGenerated against held-out cells (lower is better, but for accuracy):\n")
print(round(scores, 4))

# Embeddings: the VAE's posterior means of every cell.
sce <- embed_cells(model, sce)
cat(sprintf("\nEmbedding: reducedDim(sce, \"EXPRFLOW\") is %d cells x %d dims\n",
            nrow(reducedDim(sce, "EXPRFLOW")), ncol(reducedDim(sce, "EXPRFLOW"))))

save_model(model, file.path(out_dir, "pbmc_latent_mlp.exprflow"))
saveRDS(generated$latent_mlp, file.path(out_dir, "generated_cells.rds"))
ggplot2::ggsave(file.path(out_dir, "training_history.png"), plot_training_history(model),
                width = 8, height = 4, dpi = 100)
cat(sprintf("\nWrote the model, the generated cells and the loss curves to %s/\n", out_dir))
