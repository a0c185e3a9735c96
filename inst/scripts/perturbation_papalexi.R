# Papalexi 2021 ECCITE-seq (THP-1 cells, CRISPR knock-outs of 26 genes; 299
# measured genes), issue 11's held-out-guide protocol: for every target with
# at least two guides of 30 or more confidently assigned cells, the cells of
# one guide (its second most frequent) are held out; one model is fitted on
# every other cell with condition = c("target", "bio_rep") and predicts each
# held-out guide's cells from the non-targeting cells by transfer_cells(...,
# to = data.frame(target = X)) (each control cell keeps its replicate).
#
#   Rscript inst/scripts/perturbation_papalexi.R [data-folder] [architecture] [mode]
#
# architecture "vae" and mode "shift" (the latent arithmetic) by default;
# latent models' predictions are scored as transfer_cells() gives them
# ("model": each control cell's own noise kept) and with new draws
# ("model_drawn", noise = "drawn"), and with mode "shift" with each response
# (transfer_cells(response = )): the decoder's own ("model_own_response"),
# and the training cells' observed change ("model_observed_response"); the
# default, halfway between them, is "model".
# Scored per target with perturbation_metrics() (top_k = 50 of the 299
# genes) against the held-out guide's real cells, relative to the
# non-targeting cells, beside two baselines:
#   other_guides       the target's training cells (its other guides): what a
#                      model that learnt the target perfectly would give;
#   mean_perturbation  every perturbed training cell pooled: the average
#                      knock-out, whatever the target.
# Also the perturbation discrimination score (PDS): for each target's
# prediction, the fraction of the other targets whose real held-out profile
# (mean log expression) is nearer to it (L1) than its own target's (0 =
# perfect, ~0.5 = no better than chance); and, for targets among the
# measured genes, whether the knocked-out gene's own expression goes down.
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else file.path("..", "shared", "data")
architecture <- if (length(args) >= 2) args[[2]] else "vae"
mode <- if (length(args) >= 3) args[[3]] else "shift"
# papalexi_cells(), mean_log(), papalexi_scores(), papalexi_table(): the script beside this one.
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "read_papalexi2021.R"))
sce <- papalexi_cells(data_dir)

guides <- table(sce$guide[sce$target != "NT"])
targets <- sort(unique(sce$target[sce$target != "NT"]))
held_out_guide <- unlist(lapply(targets, function(t) {
  own <- sort(guides[startsWith(names(guides), t) & names(guides) %in% sce$guide[sce$target == t]], decreasing = TRUE)
  own <- own[own >= 30]
  if (length(own) >= 2) stats::setNames(names(own)[2], t)
}))
targets <- names(held_out_guide)
held_out <- sce$guide %in% held_out_guide
cat(sprintf("%d cells kept (%d non-targeting); %d targets, one guide each held out (%d cells)\n",
            ncol(sce), sum(sce$target == "NT"), length(targets), sum(held_out)))

started <- Sys.time()
model <- fit_expression_model(sce[, !held_out], architecture, condition = c("target", "bio_rep"), seed = 1)
cat(sprintf("%s fitted in %.0f s\n", architecture, as.numeric(difftime(Sys.time(), started, units = "secs"))))
control <- sce[, sce$target == "NT"]
perturbed_training <- counts(sce)[, !held_out & sce$target != "NT"]

predicted_profiles <- list()
scores <- do.call(rbind, lapply(targets, function(t) {
  moved <- transfer_cells(model, control, to = data.frame(target = t), mode = mode, seed = 1)
  predictions <- list(model = counts(moved),
                      other_guides = counts(sce)[, !held_out & sce$target == t],
                      mean_perturbation = perturbed_training)
  # Latent models keep each cell's noise by default; also score new draws.
  if (identical(model$space, "latent")) {
    predictions$model_drawn <- counts(transfer_cells(model, control, to = data.frame(target = t), mode = mode,
                                                     noise = "drawn", seed = 1))
  }
  # The latent shift with the other responses (transfer_cells(response = );
  # the default is halfway between them): the decoder's own, the observed
  # one alone.
  if (mode == "shift") {
    predictions$model_own_response <- counts(transfer_cells(model, control, to = data.frame(target = t),
                                                            mode = mode, seed = 1, response = "model"))
    predictions$model_observed_response <- counts(transfer_cells(model, control, to = data.frame(target = t),
                                                                 mode = mode, seed = 1, response = "observed"))
  }
  predicted_profiles[[t]] <<- lapply(predictions, mean_log)
  papalexi_scores(t, counts(sce)[, sce$guide == held_out_guide[[t]]], predictions, counts(control))
}))
real_profiles <- sapply(targets, function(t) mean_log(counts(sce)[, sce$guide == held_out_guide[[t]]]))
papalexi_print(papalexi_table(scores, predicted_profiles, real_profiles),
               sprintf("Papalexi 2021, %s (mode '%s'), per held-out guide", architecture, mode))

# The knocked-out gene's own expression, where it is measured.
measured <- intersect(targets, rownames(sce))
if (length(measured)) {
  own <- t(sapply(measured, function(t) {
    c(control = mean_log(counts(control))[[t]],
      real = mean_log(counts(sce)[, sce$guide == held_out_guide[[t]]])[[t]],
      model = predicted_profiles[[t]]$model[[t]],
      if (mode == "shift") c(model_own_response = predicted_profiles[[t]]$model_own_response[[t]]))
  }))
  cat("\nknocked-out gene's own mean log expression (control / real held-out guide / model predictions)\n")
  print(round(own, 3))
}
