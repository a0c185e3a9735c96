# Classifier-free guidance of a latent model on held-out cells: one model
# fitted per seed by compare_models() (package defaults, on the training
# cells of its stratified 25% split), then generated and scored by
# compare_models() at each guidance scale, beside the real training cells
# (the training_cells reference: what the data itself scores).
#
#   Rscript inst/scripts/compare_guidance.R [example|pbmc3k] [output-folder] [seeds] [guidance scales] [model] [data-folder]
#
# e.g. `Rscript inst/scripts/compare_guidance.R pbmc3k OUT 1,2,3 2,2.5,3`:
# the figures behind the latent models' default guidance of 2
# (?fit_expression_model). One CSV per seed and scale, then summary.csv
# (mean over seeds per scale).
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})
args <- commandArgs(trailingOnly = TRUE)
dataset <- if (length(args) >= 1) args[[1]] else "example"
out_dir <- if (length(args) >= 2) args[[2]] else paste0("exprflow-guidance-", dataset)
seeds <- if (length(args) >= 3) as.integer(strsplit(args[[3]], ",")[[1]]) else 1:3
scales <- if (length(args) >= 4) as.numeric(strsplit(args[[4]], ",")[[1]]) else c(1, 2, 2.5, 3)
architecture <- if (length(args) >= 5) args[[5]] else "latent_mlp"
data_dir <- if (length(args) >= 6) args[[6]] else file.path("..", "shared", "data", "scrna_pbmc3k_seurat")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

# read_pbmc3k(): the script beside this one.
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "read_pbmc3k.R"))
sce <- switch(dataset, example = example_pbmc(), pbmc3k = read_pbmc3k(data_dir),
              stop("dataset must be 'example' or 'pbmc3k'"))
shown <- c("mmd_rbf", "energy_distance", "knn_auc", "condition_accuracy")

frames <- list()
for (seed in seeds) {
  # The first scale's comparison fits the model (package defaults) on its
  # training cells; the other scales score that fitted model on the same
  # split (the same seed gives the same split).
  model <- list(architecture = architecture)
  for (scale in scales) {
    comparison <- compare_models(sce, models = stats::setNames(list(model), architecture), condition = "cell_type",
                                 test_fraction = 0.25, seed = seed, baselines = "training_cells",
                                 generate_args = list(guidance_scale = scale), reconstruct = FALSE)
    model <- attr(comparison, "fitted")[[architecture]]
    frame <- as.data.frame(unclass(comparison))[, c("model", "task", "metric", "value")]
    frame <- frame[frame$task == "generation", ]
    frame$seed <- seed
    frame$guidance <- scale
    utils::write.csv(frame, file.path(out_dir, sprintf("seed_%d_guidance_%s.csv", seed, scale)), row.names = FALSE)
    frames[[length(frames) + 1L]] <- frame
    own <- frame[frame$model == architecture & frame$metric %in% shown, ]
    cat(sprintf("seed %d, guidance %s: %s\n", seed, scale,
                paste(sprintf("%s %.4f", own$metric, own$value), collapse = ", ")))
  }
}
all <- do.call(rbind, frames)
all <- all[all$metric %in% shown, ]
summary <- stats::aggregate(value ~ model + guidance + metric, data = all, FUN = mean)
utils::write.csv(summary, file.path(out_dir, "summary.csv"), row.names = FALSE)
# One row per scale (the reference does not depend on it), one column per metric.
wide <- stats::reshape(summary, idvar = c("model", "guidance"), timevar = "metric", direction = "wide")
names(wide) <- sub("^value\\.", "", names(wide))
wide <- wide[!(wide$model == "training_cells" & duplicated(wide$model)), c("model", "guidance", shown)]
wide$guidance[wide$model == "training_cells"] <- NA
wide <- wide[order(wide$model == "training_cells", wide$guidance), ]
cat("\nMeans over seeds", paste(seeds, collapse = ", "), "(held-out cells):\n")
print(wide, digits = 4, row.names = FALSE)
