# Kang 2018 out-of-distribution protocol (issue 11): hold out the stimulated
# cells of one cell type, predict them from that type's control cells, for
# every type with at least 20 cells in each condition; score with
# perturbation_metrics() against the real stimulated cells of the type.
#
#   Rscript inst/scripts/perturbation_kang.R [data-folder] [top_k] [architectures] [n_genes] [settings] [bandwidths]
#
# settings: changes from the package defaults given to every model fitted,
# e.g. "kl_weight=0.1,latent_dim=32" (none by default). bandwidths: the
# latent shift's `shift_bandwidth` values to score, e.g. "Inf,0.5" (default:
# the package's); with several, predictions are suffixed _bw<value>.
#
# Predictions scored: the baselines, control as the prediction, the mean
# shift (the type's control cells moved by the average response of the other
# types, perturbation_shift()) and the weighted mean shift (the other types'
# responses weighed by how alike their control cells are to this type's,
# perturbation_shift(reference = )); and for each architecture named (comma
# separated, e.g. "state_mlp,latent_mlp"; none by default), a model fitted
# with package defaults and condition = c("cell_type", "stim") on every cell
# but the held-out ones, predicting them two ways:
#   <architecture>_<mode>    transfer_cells() of the type's control cells to
#                            data.frame(stim = "stim") (each cell keeps its type)
#                            with mode "joint", "marginal" and "contrast"
#                            (flows), and "shift" (latent models: the
#                            other types' mean latent response, scGen);
#                            latent models' predictions twice, suffixed
#                            _drawn and _cell (transfer_cells(noise = )),
#                            and "shift" with noise "cell" once more for
#                            each response (transfer_cells(response = )):
#                            the decoder's own (suffix _model), the
#                            training cells' observed change (_observed);
#                            the default, halfway between them, is _cell;
#   <architecture>_generate  generate_cells() for data.frame(cell_type = type,
#                            stim = "stim"), a combination never trained on
#                            (latent flows: suffixed _shift and _joint,
#                            generate_cells(unseen = ); _shift once more
#                            with each other response, suffixed _observed
#                            and _model, generate_cells(response = )).
# Everything is scored on the n_genes (2,000) most variable genes of Kang
# (log-normalised, both conditions). Cell types come from read_kang2018()
# (transfer from PBMC3k; see that script). Prints one row per type and the
# mean over types.
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else file.path("..", "shared", "data")
top_k <- if (length(args) >= 2) as.integer(args[[2]]) else 100L
architectures <- if (length(args) >= 3 && nzchar(args[[3]])) strsplit(args[[3]], ",")[[1]] else character()
n_genes <- if (length(args) >= 4) as.integer(args[[4]]) else 2000L
bandwidths <- if (length(args) >= 6 && nzchar(args[[6]])) as.numeric(strsplit(args[[6]], ",")[[1]]) else list(NULL)

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "read_kang2018.R"))
source(file.path(script_dir, "script_settings.R"))
settings <- settings_argument(if (length(args) >= 5) args[[5]])
protocol <- kang_protocol_cells(read_kang2018(file.path(data_dir, "perturb_kang2018_ifnb_pbmc"),
                                              file.path(data_dir, "scrna_pbmc3k_seurat")), n_genes)
sce <- protocol$sce
types <- protocol$types
cells <- function(type, stim) counts(sce)[, sce$cell_type == type & sce$stim == stim, drop = FALSE]

wanted <- c("r2_mean", "r2_mean_deg", "pearson_delta", "pearson_delta_deg", "deg_overlap", "energy_distance")
rows <- lapply(types, function(type) {
  predictions <- list()
  for (architecture in architectures) {
    started <- Sys.time()
    # Training settings go in `training`, the others are the architecture's.
    is_training <- names(settings) %in% names(training_defaults(architecture))
    model <- do.call(fit_expression_model,
                     c(list(sce[, !(sce$cell_type == type & sce$stim == "stim")], architecture,
                            condition = c("cell_type", "stim"), seed = 1, training = settings[is_training]),
                       settings[!is_training]))
    control <- sce[, sce$cell_type == type & sce$stim == "ctrl"]
    # Latent models add the latent shift (scGen's arithmetic); the "vae"
    # alone has no flow, so only that.
    modes <- c(if (architecture != "vae") c("joint", "marginal", "contrast"),
               if (identical(model$space, "latent")) "shift")
    # Latent models' counts two ways: drawn from the moved cell's decoded
    # law, or each observed count carried to its quantile there (the cell's
    # own noise kept).
    noises <- if (identical(model$space, "latent")) c("drawn", "cell") else "drawn"
    for (mode in modes) {
      for (noise in noises) {
        for (bandwidth in if (mode == "shift") bandwidths else list(NULL)) {
          moved <- transfer_cells(model, control, to = data.frame(stim = "stim"), mode = mode, noise = noise, seed = 1,
                                  shift_bandwidth = bandwidth)
          name <- paste0(architecture, "_", mode, if (length(noises) > 1L) paste0("_", noise),
                         if (mode == "shift" && length(bandwidths) > 1L) paste0("_bw", bandwidth))
          predictions[[name]] <- counts(moved)
          if (mode == "shift" && noise == "cell") {
            # The same shift with the other responses (the default is
            # halfway between them): the decoder's own, and the other types'
            # observed change anchoring the mean (the model giving each
            # cell's departure).
            own <- transfer_cells(model, control, to = data.frame(stim = "stim"), mode = mode, noise = noise,
                                  seed = 1, shift_bandwidth = bandwidth, response = "model")
            predictions[[paste0(name, "_model")]] <- counts(own)
            observed <- transfer_cells(model, control, to = data.frame(stim = "stim"), mode = mode, noise = noise,
                                       seed = 1, shift_bandwidth = bandwidth, response = "observed")
            predictions[[paste0(name, "_observed")]] <- counts(observed)
          }
        }
      }
    }
    # Latent flows generate the unseen combination two ways: sampled at the
    # type's control cells plus the latent shift, or asked of the flow.
    unseens <- if (identical(model$space, "latent") && architecture != "vae") c("shift", "joint") else "joint"
    for (unseen in unseens) {
      for (bandwidth in if (unseen == "shift") bandwidths else list(NULL)) {
        # The shift's cells with each response: the default ("both"), the
        # observed change alone, drawn at the shifted codes ("model").
        for (response in if (unseen == "shift") list(NULL, "observed", "model") else list(NULL)) {
          made <- generate_cells(model, condition = data.frame(cell_type = type, stim = "stim"),
                                 n = ncol(cells(type, "stim")), seed = 1, unseen = unseen,
                                 shift_bandwidth = bandwidth, response = response)
          name <- paste0(architecture, "_generate", if (length(unseens) > 1L) paste0("_", unseen),
                         if (unseen == "shift" && length(bandwidths) > 1L) paste0("_bw", bandwidth),
                         if (!is.null(response)) paste0("_", response))
          predictions[[name]] <- counts(made)
        }
      }
    }
    message(sprintf("%s held out, %s: fit and predict %.0f s", type, architecture,
                    as.numeric(difftime(Sys.time(), started, units = "secs"))))
  }
  # Each type's scores as they come (a full run takes a while).
  scores <- score_kang_type(sce, type, types, if (length(predictions)) predictions, top_k, wanted)
  cbind(cell_type = type, scores)
})
all <- do.call(rbind, rows)
wide <- stats::reshape(all, idvar = c("cell_type", "prediction"), timevar = "metric", direction = "wide")
names(wide) <- sub("^value\\.", "", names(wide))
means <- stats::aggregate(wide[, wanted], by = list(prediction = wide$prediction), FUN = mean)
cat(sprintf("Kang 2018, %d cell types held out in turn; top_k = %d; settings %s\n", length(types), top_k,
            if (length(settings)) paste(names(settings), settings, sep = "=", collapse = ", ") else "defaults"))
print(wide[order(wide$prediction, wide$cell_type), ], row.names = FALSE, digits = 3)
cat("\nmean over cell types\n")
print(means, row.names = FALSE, digits = 3)
