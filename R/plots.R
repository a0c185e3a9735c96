#' Plot the training history of a model
#'
#' @param model An `exprflow_model`.
#' @param log_scale Use a log10 y axis.
#' @return A ggplot of the training and validation loss per epoch, one
#'   panel per training stage for two-stage (VAE-based) models.
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", epochs = 1, n_tokens = 4,
#'                               token_dim = 16, n_layers = 1, n_heads = 2, hidden = 64)
#' plot_training_history(model)
#' @export
plot_training_history <- function(model, log_scale = FALSE) {
  if (!inherits(model, "exprflow_model")) stop("`model` must be an exprflow_model", call. = FALSE)
  h <- model$history
  if (!NROW(h)) stop("the model has no training history", call. = FALSE)
  stage <- h$stage %||% rep("model", nrow(h))
  long <- rbind(
    data.frame(stage = stage, epoch = h$epoch, loss = h$train_loss, split = "training"),
    data.frame(stage = stage, epoch = h$epoch, loss = h$validation_loss, split = "validation"))
  long <- long[!is.na(long$loss), ]
  stages <- unique(stage)
  long$stage <- factor(long$stage, levels = stages)
  y_label <- if (identical(stages, "model")) "loss (flow: velocity MSE; DDPM: prediction MSE + weighted VLB)" else
    "loss (vae: negative ELBO per cell, nats; latent: the objective's loss)"
  p <- ggplot2::ggplot(long, ggplot2::aes(x = .data$epoch, y = .data$loss, colour = .data$split)) +
    ggplot2::geom_line() +
    ggplot2::geom_point(size = 1) +
    ggplot2::labs(x = "epoch", y = y_label, colour = NULL, title = paste("exprflow", model$architecture)) +
    ggplot2::theme_minimal()
  # One panel per training stage, in training order: their losses are on different scales.
  if (length(stages) > 1L) p <- p + ggplot2::facet_wrap(~stage, scales = "free_y")
  if (log_scale) p <- p + ggplot2::scale_y_log10()
  p
}

#' @rdname plot_training_history
#' @param x An `exprflow_model`.
#' @param ... Passed to `plot_training_history()`.
#' @export
plot.exprflow_model <- function(x, ...) print(plot_training_history(x, ...))

#' @importFrom ggplot2 .data
NULL

#' Real and generated cells in one picture
#'
#' Fits an [evaluation_space()] (log-normalised HVGs and PCA) on the real
#' cells only, projects real and generated cells into it, and draws the first
#' two principal components or a UMAP (package uwot) of the principal
#' components of all cells together.
#'
#' @param real Real cells: a SingleCellExperiment, Seurat object or count
#'   matrix (genes x cells).
#' @param generated Generated cells (e.g. from [generate_cells()]), or a named
#'   list of them, e.g. `attr(comparison, "generated")` of [compare_models()].
#' @param condition `NULL` or a colData column present in `real` and every
#'   generated set; colours the cells with `color_by = "condition"`.
#' @param method `"pca"` or `"umap"`.
#' @param color_by `"source"` (real vs each generated set, all in one panel)
#'   or `"condition"` (one panel per source, coloured by condition).
#' @param n_genes,n_pcs Settings of the [evaluation_space()].
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @param seed Seed of the UMAP.
#' @return A ggplot object.
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' nb <- fit_baseline(sce, "independent_nb", condition = "cell_type")
#' fake <- generate_cells(nb, n = 300)
#' plot_cells(sce, list(independent_nb = fake), condition = "cell_type", color_by = "condition")
#' @export
plot_cells <- function(real, generated, condition = NULL, method = c("pca", "umap"),
                       color_by = c("source", "condition"), n_genes = 2000, n_pcs = 30,
                       assay = NULL, seed = 1) {
  method <- match.arg(method)
  color_by <- match.arg(color_by)
  if (!is.list(generated) || methods::is(generated, "SummarizedExperiment")) {
    generated <- list(generated = generated)
  }
  if (is.null(names(generated)) || any(!nzchar(names(generated)))) {
    stop("`generated` must be one set of cells or a named list of them", call. = FALSE)
  }
  if (color_by == "condition" && is.null(condition)) {
    stop("`color_by = \"condition\"` needs `condition` (a colData column)", call. = FALSE)
  }
  space <- evaluation_space(real, n_genes = n_genes, n_pcs = n_pcs, assay = assay)
  sets <- c(list(real = real), generated)
  labels <- function(cells, name) {
    if (is.null(condition)) return(rep(NA_character_, ncol(cells)))
    covariates <- .counts_and_covariates(cells, assay, name)$covariates
    if (is.null(covariates) || !condition %in% colnames(covariates)) {
      stop(sprintf("`%s` has no column '%s'", name, condition), call. = FALSE)
    }
    as.character(covariates[[condition]])
  }
  parts <- lapply(names(sets), function(name) {
    scores <- project_cells(space, sets[[name]], assay = assay)
    list(scores = scores, source = rep(name, nrow(scores)), label = labels(sets[[name]], name))
  })
  scores <- do.call(rbind, lapply(parts, `[[`, "scores"))
  if (method == "umap") {
    if (!requireNamespace("uwot", quietly = TRUE)) {
      stop("method = \"umap\" needs the uwot package (Debian: r-cran-uwot)", call. = FALSE)
    }
    layout <- .with_seed(seed, uwot::umap(scores, n_neighbors = 15, min_dist = 0.3, n_threads = 1))
    axes <- c("UMAP 1", "UMAP 2")
  } else {
    layout <- scores[, 1:2, drop = FALSE]
    axes <- c("PC 1", "PC 2")
  }
  frame <- data.frame(x = layout[, 1], y = layout[, 2],
                      source = factor(unlist(lapply(parts, `[[`, "source")), levels = names(sets)),
                      condition = unlist(lapply(parts, `[[`, "label")))
  if (color_by == "source") {
    # Real cells underneath so generated cells on top of them stay visible.
    frame <- frame[order(frame$source != "real"), ]
    p <- ggplot2::ggplot(frame, ggplot2::aes(x = .data$x, y = .data$y, colour = .data$source)) +
      ggplot2::geom_point(size = 0.6, alpha = 0.6)
  } else {
    p <- ggplot2::ggplot(frame, ggplot2::aes(x = .data$x, y = .data$y, colour = .data$condition)) +
      ggplot2::geom_point(size = 0.6, alpha = 0.7) +
      ggplot2::facet_wrap(~source)
  }
  p + ggplot2::labs(x = axes[1], y = axes[2], colour = NULL,
                    title = sprintf("Real and generated cells (%s fitted on the real cells)",
                                    if (method == "pca") "PCA" else "PCA then UMAP")) +
    ggplot2::theme_bw(base_size = 9) +
    ggplot2::guides(colour = ggplot2::guide_legend(override.aes = list(size = 2, alpha = 1)))
}
