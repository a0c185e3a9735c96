# Kang 2018 out-of-distribution protocol (issue 11): hold out the stimulated
# cells of one cell type, predict them from that type's control cells, for
# every type with at least 20 cells in each condition; score with
# perturbation_metrics() against the real stimulated cells of the type.
#
#   Rscript inst/scripts/perturbation_kang.R [data-folder] [top_k]
#
# Predictions scored today: the baselines, control as the prediction and the
# mean shift (the type's control cells moved by the average response of the
# other types, perturbation_shift()). Cell types come from read_kang2018()
# (transfer from PBMC3k; see that script). Prints one row per type and the
# mean over types.
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else file.path("..", "shared", "data")
top_k <- if (length(args) >= 2) as.integer(args[[2]]) else 100L

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "read_kang2018.R"))
sce <- read_kang2018(file.path(data_dir, "perturb_kang2018_ifnb_pbmc"), file.path(data_dir, "scrna_pbmc3k_seurat"))
counts <- counts(sce)
cells <- function(type, stim) counts[, sce$cell_type == type & sce$stim == stim, drop = FALSE]
sizes <- table(sce$cell_type, sce$stim)
types <- rownames(sizes)[sizes[, "ctrl"] >= 20 & sizes[, "stim"] >= 20]

wanted <- c("r2_mean", "r2_mean_deg", "pearson_delta", "pearson_delta_deg", "deg_overlap", "energy_distance")
rows <- lapply(types, function(type) {
  others <- setdiff(types, type)
  shift <- perturbation_shift(lapply(others, cells, stim = "stim"), lapply(others, cells, stim = "ctrl"))
  scores <- perturbation_metrics(cells(type, "stim"), NULL, cells(type, "ctrl"), top_k = top_k,
                                 training_shift = shift)
  scores <- scores[scores$metric %in% wanted, c("prediction", "metric", "value")]
  cbind(cell_type = type, scores)
})
all <- do.call(rbind, rows)
wide <- stats::reshape(all, idvar = c("cell_type", "prediction"), timevar = "metric", direction = "wide")
names(wide) <- sub("^value\\.", "", names(wide))
means <- stats::aggregate(wide[, wanted], by = list(prediction = wide$prediction), FUN = mean)
cat(sprintf("Kang 2018, %d cell types held out in turn; top_k = %d\n", length(types), top_k))
print(wide[order(wide$prediction, wide$cell_type), ], row.names = FALSE, digits = 3)
cat("\nmean over cell types\n")
print(means, row.names = FALSE, digits = 3)
