# Papalexi 2021 ECCITE-seq, a check of the latent shift's context weighting
# (transfer_cells(shift_bandwidth = )) on a second data set: each target's
# cells of one replicate are held out (the replicates in turn over the
# targets with at least 30 cells in each of three replicates); one "vae" is
# fitted on every other cell with condition = c("target", "bio_rep"); each
# held-out set is predicted from its replicate's non-targeting cells by the
# latent shift, whose response comes from the target's other replicates,
# weighed alike ("bwInf") or by how alike their non-targeting cells are
# ("bw0.25", the default), both with the default response, and "bw0.25"
# once more for each other response (transfer_cells(response = )): the
# decoder's own ("_model") and the observed change alone ("_observed"); the
# default is halfway between them.
# Scored with perturbation_metrics() (top_k = 50)
# beside the mean shift over the other replicates, equal and weighted
# (perturbation_shift(reference = )); means over the targets.
#
#   Rscript inst/scripts/perturbation_papalexi_replicates.R [data-folder]
#
# Measured (seed 1, 23 targets; top-50 DEG delta correlation / energy
# distance): bw0.25 0.418 / 0.183, bw0.25_observed 0.410 / 0.176 (bwInf
# with it 0.404 / 0.175), bw0.25_model 0.336 / 0.217, mean shift 0.392 /
# 0.187, weighted mean shift 0.395 / 0.192.
suppressPackageStartupMessages({ library(exprflow); library(SingleCellExperiment) })
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else file.path("..", "shared", "data")
# papalexi_cells(): the script beside this one.
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "read_papalexi2021.R"))
sce <- papalexi_cells(data_dir)
reps <- sort(unique(as.character(sce$bio_rep)))
targets <- sort(unique(sce$target[sce$target != "NT"]))
sizes <- table(sce$target, sce$bio_rep)
held <- character()
for (i in seq_along(targets)) {
  t <- targets[[i]]
  ok <- reps[sizes[t, reps] >= 30]
  if (length(ok) >= 3) held[[t]] <- ok[[(i - 1) %% length(ok) + 1]]
}
cat(length(held), "targets, one replicate each held out; replicates", reps, "\n")
out <- sce$target %in% names(held) & as.character(sce$bio_rep) == held[as.character(sce$target)]
out[is.na(out)] <- FALSE
model <- fit_expression_model(sce[, !out], "vae", condition = c("target", "bio_rep"), seed = 1)
cells <- function(t, r) counts(sce)[, sce$target == t & as.character(sce$bio_rep) == r & !out]
rows <- lapply(names(held), function(t) {
  r <- held[[t]]
  control <- sce[, sce$target == "NT" & as.character(sce$bio_rep) == r]
  others <- setdiff(reps[sizes[t, reps] >= 1], r)
  predictions <- lapply(c(bw0.25 = 0.25, bwInf = Inf), function(b)
    counts(transfer_cells(model, control, to = data.frame(target = t), mode = "shift", seed = 1, shift_bandwidth = b)))
  for (response in c("model", "observed")) {
    predictions[[paste0("bw0.25_", response)]] <- counts(transfer_cells(model, control, to = data.frame(target = t),
                                                                        mode = "shift", seed = 1, response = response))
  }
  real <- counts(sce)[, sce$target == t & as.character(sce$bio_rep) == r]
  equal <- perturbation_shift(lapply(others, cells, t = t), lapply(others, cells, t = "NT"))
  weighted <- perturbation_shift(lapply(others, cells, t = t), lapply(others, cells, t = "NT"),
                                 reference = counts(control))
  s <- perturbation_metrics(real, predictions, counts(control), top_k = 50, training_shift = equal)
  w <- perturbation_metrics(real, NULL, counts(control), top_k = 50, training_shift = weighted)
  w <- w[w$prediction == "mean_shift", ]; w$prediction <- "mean_shift_weighted"
  cbind(target = t, rbind(s, w)[, c("prediction", "metric", "value")])
})
all <- do.call(rbind, rows)
all <- all[all$metric %in% c("r2_mean", "pearson_delta", "pearson_delta_deg", "deg_overlap", "energy_distance"), ]
print(stats::aggregate(value ~ prediction + metric, all, mean), digits = 3)
