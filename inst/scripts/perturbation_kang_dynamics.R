# Kang 2018 as courses over time (issue 12's `condition`): each cell type is
# a course observed before (time 0, control) and after (time 1, IFN-beta)
# the stimulation. For each cell type in turn, its stimulated cells are held
# out; a population flow is fitted on every other cell with
# fit_dynamics_model(condition = "cell_type"), so the held-out type is a
# course observed at time 0 only, and its control cells are moved to time 1
# with transfer_cells(). Scored as perturbation_kang.R scores its
# predictions (perturbation_metrics(), top-k DEGs, the mean shift and the
# weighted mean shift baselines).
#
#   Rscript inst/scripts/perturbation_kang_dynamics.R [data-folder] [top_k] [n_genes] [seeds] [variants] [settings]
#
# variants: comma-separated, any of
#   courses      condition = "cell_type" (package defaults)
#   courses_ssm  the same with state = "ssm" (the courses' populations' state)
#   courses_vae  condition = "cell_type", encoder = "vae" (the flow in a count
#                VAE's latent space, fitted on the same training cells)
#   pooled       condition = NULL: every type one population at each time
# (default: courses, courses_ssm, pooled). seeds: e.g. "1,2,3" (default 1); predictions are
# scored per seed and the means over seeds printed. settings: changes from
# the package defaults given to every fit, e.g. "n_pcs=50,state_dropout=0.5";
# "encoder.<name>=value" goes to the VAE encoder's settings
# (`encoder_settings`), e.g. "encoder.latent_dim=32" or "encoder.kl_weight=0.1".
#
# The flow works on log-normalised values (of the n_genes most variable
# genes, as the metrics read them); its moved cells are handed to
# perturbation_metrics() as expm1() of their values, which that function
# normalises again (a moved cell's values no longer sum to exactly the
# normalised library size; the second normalisation rescales them to it).
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else file.path("..", "shared", "data")
top_k <- if (length(args) >= 2) as.integer(args[[2]]) else 100L
n_genes <- if (length(args) >= 3) as.integer(args[[3]]) else 2000L
seeds <- if (length(args) >= 4) as.integer(strsplit(args[[4]], ",")[[1]]) else 1L
variants <- if (length(args) >= 5) strsplit(args[[5]], ",")[[1]] else c("courses", "courses_ssm", "pooled")
known <- list(courses = list(condition = "cell_type"), courses_ssm = list(condition = "cell_type", state = "ssm"),
              courses_vae = list(condition = "cell_type", encoder = "vae"), pooled = list())
if (!all(variants %in% names(known))) stop("variants must be among ", paste(names(known), collapse = ", "))

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "read_kang2018.R"))
source(file.path(script_dir, "script_settings.R"))
settings <- settings_argument(if (length(args) >= 6) args[[6]])
for_encoder <- startsWith(as.character(names(settings)), "encoder.")
encoder_settings <- stats::setNames(settings[for_encoder], sub("^encoder\\.", "", names(settings)[for_encoder]))
settings <- settings[!for_encoder]
# The VAE's training settings (e.g. kl_weight) go in its `training` list.
is_training <- names(encoder_settings) %in% names(training_defaults("vae"))
encoder_settings <- c(encoder_settings[!is_training], list(training = encoder_settings[is_training]))
protocol <- kang_protocol_cells(read_kang2018(file.path(data_dir, "perturb_kang2018_ifnb_pbmc"),
                                              file.path(data_dir, "scrna_pbmc3k_seurat")), n_genes)
sce <- protocol$sce
types <- protocol$types
sce$time <- ifelse(sce$stim == "stim", 1, 0)

wanted <- c("r2_mean", "r2_mean_deg", "pearson_delta", "pearson_delta_deg", "deg_overlap", "energy_distance")
rows <- list()
for (seed in seeds) for (type in types) {
  train <- sce[, !(sce$cell_type == type & sce$stim == "stim")]
  control <- sce[, sce$cell_type == type & sce$stim == "ctrl"]
  predictions <- list()
  for (variant in variants) {
    started <- Sys.time()
    model <- do.call(fit_dynamics_model, c(list(train, "time", values = "counts", seed = seed, verbose = FALSE),
                                           known[[variant]], settings,
                                           if (identical(known[[variant]]$encoder, "vae")) {
                                             list(encoder_settings = encoder_settings)
                                           }))
    moved <- transfer_cells(model, control, to = 1)
    predictions[[variant]] <- expm1(SummarizedExperiment::assay(moved, "logcounts"))
    message(sprintf("seed %d, %s held out, %s: fit and predict %.0f s", seed, type, variant,
                    as.numeric(difftime(Sys.time(), started, units = "secs"))))
  }
  scores <- score_kang_type(sce, type, types, predictions, top_k, wanted)
  rows[[length(rows) + 1L]] <- cbind(seed = seed, cell_type = type, scores)
}
all <- do.call(rbind, rows)
wide <- stats::reshape(all, idvar = c("seed", "cell_type", "prediction"), timevar = "metric", direction = "wide")
names(wide) <- sub("^value\\.", "", names(wide))
cat(sprintf("Kang 2018 as courses, %d cell types held out in turn; top_k = %d; seeds %s; settings %s\n",
            length(types), top_k, paste(seeds, collapse = ", "),
            if (length(args) >= 6 && nzchar(args[[6]])) args[[6]] else "defaults"))
per_type <- stats::aggregate(wide[, wanted], by = list(prediction = wide$prediction, cell_type = wide$cell_type),
                             FUN = mean)
print(per_type[order(per_type$prediction, per_type$cell_type), ], row.names = FALSE, digits = 3)
cat("\nmean over cell types (and seeds)\n")
print(stats::aggregate(wide[, wanted], by = list(prediction = wide$prediction), FUN = mean), row.names = FALSE,
      digits = 3)
