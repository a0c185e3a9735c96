# Papalexi 2021 ECCITE-seq for the scripts that score perturbation
# predictions on it (perturbation_papalexi.R, perturbation_papalexi_unseen.R):
# the confidently assigned cells, mean log profiles, and the table of scores
# per target and prediction with the perturbation discrimination score.
# Sourced, not run.

# The cells whose top guide has at least 3x the second's UMIs, as a
# SingleCellExperiment with colData target ("NT" for non-targeting), guide
# and bio_rep.
papalexi_cells <- function(data_dir) {
  folder <- file.path(data_dir, "perturb_papalexi2021_eccite_thp1")
  if (!dir.exists(folder)) stop("no Papalexi 2021 data in ", folder)
  counts <- as(Matrix::readMM(gzfile(file.path(folder, "matrix.mtx.gz"))), "CsparseMatrix")
  rownames(counts) <- readLines(file.path(folder, "genes.tsv"))
  meta <- utils::read.csv(file.path(folder, "cell_metadata.csv"), stringsAsFactors = FALSE)
  colnames(counts) <- meta$cell_id
  keep <- meta$top_grna_umi >= 3 * pmax(meta$second_grna_umi, 1) & Matrix::colSums(counts) > 0
  sce <- SingleCellExperiment::SingleCellExperiment(list(counts = counts[, keep]))
  sce$target <- ifelse(meta$top_grna_target[keep] == "non-targeting", "NT", meta$top_grna_target[keep])
  sce$guide <- meta$top_grna[keep]
  sce$bio_rep <- meta$bio_rep[keep]
  sce
}

# Mean log-normalised expression per gene (scale 1e4).
mean_log <- function(m) {
  m <- as.matrix(m)
  rowMeans(log1p(t(t(m) / pmax(colSums(m), 1)) * 1e4))
}

papalexi_metrics <- c("r2_mean", "pearson_delta", "pearson_delta_deg", "deg_overlap", "energy_distance")

# One target's predictions (a named list of count matrices) scored against
# its real cells relative to `control`: rows target, prediction, metric, value.
papalexi_scores <- function(target, real, predictions, control) {
  scores <- exprflow::perturbation_metrics(real, predictions, control, top_k = 50)
  scores <- scores[scores$metric %in% papalexi_metrics & scores$prediction %in% names(predictions), ]
  cbind(target = target, scores[, c("prediction", "metric", "value")])
}

# One row per target and prediction: the metrics of `scores` (rows of
# papalexi_scores()) and the perturbation discrimination score, the fraction
# of the other targets whose real profile (`real_profiles`, genes x targets)
# is nearer (L1) to the prediction's profile (`predicted_profiles[[target]]
# [[prediction]]`) than its own target's: 0 perfect, ~0.5 chance.
papalexi_table <- function(scores, predicted_profiles, real_profiles) {
  wide <- stats::reshape(scores, idvar = c("target", "prediction"), timevar = "metric", direction = "wide")
  names(wide) <- sub("^value\\.", "", names(wide))
  targets <- colnames(real_profiles)
  pds <- do.call(rbind, lapply(targets, function(t) {
    do.call(rbind, lapply(names(predicted_profiles[[t]]), function(p) {
      d <- colSums(abs(real_profiles - predicted_profiles[[t]][[p]]))
      data.frame(target = t, prediction = p, pds = sum(d[names(d) != t] < d[[t]]) / (length(d) - 1))
    }))
  }))
  merge(wide, pds, by = c("target", "prediction"))
}

papalexi_print <- function(wide, title) {
  cat("\n", title, "\n", sep = "")
  print(wide[order(wide$prediction, wide$target), ], row.names = FALSE, digits = 3)
  cat("\nmean over targets\n")
  print(stats::aggregate(wide[, c(papalexi_metrics, "pds")], by = list(prediction = wide$prediction), FUN = mean),
        row.names = FALSE, digits = 3)
}

