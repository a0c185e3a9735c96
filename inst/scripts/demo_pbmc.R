# exprflow demo: the package's main job on the bundled PBMC example data.
#   Rscript inst/scripts/demo_pbmc.R [output-folder]      (or: make demo)
# compare_models() holds out a quarter of the cells (stratified by cell
# type), fits the default model (latent_mlp: a count VAE, then a flow in its
# latent space; package defaults) conditioned on cell type on the rest,
# generates as many cells per type as were held out, and measures them
# against the held-out cells beside two baselines fitted on the same cells.
# Then the fitted model embeds the cells, is saved, and its loss curves are
# written. About three minutes on 2
# CPU cores.
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

# compare_models() holds out a quarter of each cell type (the model never
# sees these cells), fits the default model (latent_mlp, package defaults)
# and two baselines on the rest (independent negative binomials per gene and
# cell type; the same joined by a Gaussian copula, scDesign3's model of
# gene-gene correlation), generates as many cells per type as were held out,
# and measures each set against the held-out cells. Beside them, real
# training cells drawn per type (training_cells) show what the data itself
# scores: the mark no generator passes on MMD, energy distance and kNN AUC.
t0 <- Sys.time()
comparison <- compare_models(sce, models = list(latent_mlp = list(verbose = TRUE)), condition = "cell_type",
                             test_fraction = 0.25, seed = 1, baselines = c("independent_nb", "nb_copula", "training_cells"),
                             reconstruct = FALSE, verbose = TRUE)
cat(sprintf("Fitting and measuring took %.0f s\n", as.numeric(difftime(Sys.time(), t0, units = "secs"))))
model <- attr(comparison, "fitted")$latent_mlp
print(model)
print(attr(comparison, "generated")$latent_mlp)

shown <- c(mmd_rbf = "RBF MMD", energy_distance = "energy distance",
           knn_auc = "kNN real-vs-generated AUC", condition_accuracy = "cell-type accuracy")
frame <- as.data.frame(unclass(comparison))
scores <- frame[frame$task == "generation" & frame$metric %in% names(shown), ]
table <- stats::xtabs(value ~ metric + model, scores)[names(shown),
                                                     c("latent_mlp", "independent_nb", "nb_copula", "training_cells")]
rownames(table) <- shown
colnames(table)[colnames(table) == "training_cells"] <- "real cells"
cat("\nGenerated against held-out cells (lower is better, but for accuracy; kNN AUC 0.5 best).",
    "\n'real cells': training cells drawn per type, what the data itself scores:\n")
print(round(table, 4))

# Embeddings: the VAE's posterior means of every cell.
sce <- embed_cells(model, sce)
cat(sprintf("\nEmbedding: reducedDim(sce, \"EXPRFLOW\") is %d cells x %d dims\n",
            nrow(reducedDim(sce, "EXPRFLOW")), ncol(reducedDim(sce, "EXPRFLOW"))))

save_model(model, file.path(out_dir, "pbmc_latent_mlp.exprflow"))
saveRDS(attr(comparison, "generated")$latent_mlp, file.path(out_dir, "generated_cells.rds"))
ggplot2::ggsave(file.path(out_dir, "training_history.png"), plot_training_history(model),
                width = 8, height = 4, dpi = 100)
cat(sprintf("\nWrote the model, the generated cells and the loss curves to %s/\n", out_dir))
