# Evaluation metrics: how well a prediction of perturbed cells matches the
# real response to the perturbation, beside the baselines every perturbation
# model has to beat (control as the prediction, the mean shift of other
# groups, the additive combination of single perturbations).
# (Metric names and directions: R/metrics_table.R.)

#' How well predicted cells match the real response to a perturbation
#'
#' Scores one or several predictions of a perturbed population against the
#' real perturbed cells, relative to the real control cells, as the
#' perturbation-prediction literature does (scGen, CPA, GEARS), and scores the
#' baselines that a model must beat on the same cells.
#'
#' Every set of cells is log-normalised, `log1p(count / library size *
#' scale_factor)`. Then, with genes ranked as differentially expressed by the
#' absolute moderated Welch statistic of real perturbed against control
#' cells, `difference of means / (standard error + s0)` with `s0` the median
#' of the genes' non-zero standard errors (SAM's fudge factor; the top
#' `top_k` are "the DEGs"):
#' * `pearson_mean`, `r2_mean`: Pearson correlation across all genes between
#'   the predicted and the real mean expression, and its square (the "R^2"
#'   scGen reports); `pearson_mean_deg`, `r2_mean_deg`: the same over the
#'   DEGs.
#' * `pearson_delta`, `pearson_delta_deg`: Pearson correlation of the
#'   responses, `predicted mean - control mean` against `real mean - control
#'   mean`, over all genes and over the DEGs. This is the score that control
#'   cells cannot game: their response is zero, and the score is `NA`.
#' * `deg_overlap`: the fraction of the real DEGs that are also among the
#'   `top_k` genes of the prediction against the control cells (`NA` when
#'   the prediction does not differ from the control).
#' * `energy_distance`, `mmd_rbf`: distances between the predicted and the
#'   real cells in the first `n_pcs` principal components of the real
#'   perturbed and control cells (at most 2,000 highest-variance genes), as
#'   [energy_distance()] and [mmd_rbf()] compute them.
#'
#' Baselines, scored with the same metrics (column `prediction`):
#' * `"control"`: the control cells as the prediction (always);
#' * `"mean_shift"`: the control cells shifted by `training_shift`, the
#'   average response of other groups (for example the other cell types, or
#'   the other perturbations; see [perturbation_shift()]);
#' * `"additive"` (for a combination A+B): the control cells shifted by the
#'   sum of the real responses of the single perturbations in `singles`,
#'   `yA + yB - 2 control`, added to control.
#' Shifted cells live on the log scale and are clipped at zero there.
#'
#' @param real The real perturbed cells: counts (genes x cells) as a
#'   SingleCellExperiment, a Seurat object, a dgCMatrix or a dense matrix.
#' @param predicted The predicted cells in the same forms (for example
#'   [generate_cells()] output), with the genes of `real` (matched by name);
#'   or a named list of such, one per model. `NULL` scores the baselines
#'   alone.
#' @param control The real control cells, with the genes of `real`.
#' @param top_k Number of top differentially expressed genes.
#' @param training_shift `NULL`, or the average response of other groups on
#'   the log scale: a numeric vector named by gene (all genes of `real`),
#'   such as [perturbation_shift()] returns. Adds the `"mean_shift"`
#'   baseline.
#' @param singles `NULL`, or for a combination of perturbations a list of at
#'   least two sets of real cells, each perturbed by one of its members.
#'   Adds the `"additive"` baseline.
#' @param n_pcs Principal components for the distances (fewer when the cells
#'   or genes do not allow them).
#' @param max_cells Cells per set at most in the distances (a seeded
#'   subsample).
#' @param scale_factor Library size the cells are normalised to.
#' @param seed Seed of the subsampling and of the principal components.
#' @param assay Where the counts are (see [gene_statistics_agreement()]).
#' @return A data.frame with columns `prediction` (the names of `predicted`,
#'   `"predicted"` for a single one, then the baselines), `metric`, `value`
#'   and `lower_is_better`, and attribute `"degs"`: the real DEGs, strongest
#'   first.
#' @examples
#' sce <- example_pbmc()
#' counts <- SingleCellExperiment::counts(sce)
#' b <- counts[, sce$cell_type == "B"]
#' # A toy "perturbation": the B cells' first 20 genes tripled.
#' up <- b[, 1:50]
#' up[1:20, ] <- up[1:20, ] * 3
#' guess <- b[, 51:100]
#' guess[1:20, ] <- guess[1:20, ] * 2
#' perturbation_metrics(up, guess, control = b[, 101:ncol(b)], top_k = 20)
#' @export
perturbation_metrics <- function(real, predicted, control, top_k = 100, training_shift = NULL,
                                 singles = NULL, n_pcs = 30, max_cells = 2000, scale_factor = 1e4,
                                 seed = 1, assay = NULL) {
  top_k <- .check_count(top_k, "top_k", min = 1)
  n_pcs <- .check_count(n_pcs, "n_pcs", min = 1)
  max_cells <- .check_count(max_cells, "max_cells", min = 2)
  scale_factor <- .check_positive(scale_factor, "scale_factor")
  seed <- .check_count(seed, "seed", min = 0)
  real_counts <- .metric_counts(real, assay, "real")
  genes <- rownames(real_counts)
  if (top_k > length(genes)) {
    stop(sprintf("`top_k` (%d) must be at most the number of genes (%d)", top_k, length(genes)), call. = FALSE)
  }
  control_counts <- .match_genes(real_counts, .metric_counts(control, assay, "control"), "real", "control")
  for (arg in c("real", "control")) {
    n <- ncol(if (arg == "real") real_counts else control_counts)
    if (n < 2L) stop(sprintf("`%s` has %d cell; at least 2 are needed", arg, n), call. = FALSE)
  }
  real_log <- .dense_log(real_counts, scale_factor)
  control_log <- .dense_log(control_counts, scale_factor)

  named <- .named_predictions(predicted)
  predictions <- stats::setNames(lapply(names(named), function(name) {
    arg <- if (identical(names(named), "predicted") && !is.list(predicted)) "predicted" else sprintf("predicted$%s", name)
    counts <- .match_genes(real_counts, .metric_counts(named[[name]], assay, arg), "real", arg)
    if (ncol(counts) < 2L) stop(sprintf("`%s` has %d cell; at least 2 are needed", arg, ncol(counts)), call. = FALSE)
    .dense_log(counts, scale_factor)
  }), names(named))
  if (any(c("control", "mean_shift", "additive") %in% names(predictions))) {
    stop("the names 'control', 'mean_shift' and 'additive' in `predicted` are kept for the baselines",
         call. = FALSE)
  }
  control_mean <- rowMeans(control_log)
  predictions$control <- control_log
  if (!is.null(training_shift)) {
    predictions$mean_shift <- .shifted(control_log, .check_shift(training_shift, genes, "training_shift"))
  }
  if (!is.null(singles)) {
    if (!is.list(singles) || length(singles) < 2L) {
      stop("`singles` must be a list of at least two sets of cells, one per single perturbation", call. = FALSE)
    }
    responses <- lapply(seq_along(singles), function(i) {
      arg <- sprintf("singles[[%d]]", i)
      counts <- .match_genes(real_counts, .metric_counts(singles[[i]], assay, arg), "real", arg)
      rowMeans(.dense_log(counts, scale_factor)) - control_mean
    })
    predictions$additive <- .shifted(control_log, Reduce(`+`, responses))
  }

  real_mean <- rowMeans(real_log)
  real_delta <- real_mean - control_mean
  real_t <- .moderated_t(real_log, control_log)
  degs <- utils::head(order(-abs(real_t), seq_along(real_t)), top_k)

  # Fewer components where the cells or the genes that vary do not allow
  # n_pcs (the space keeps only genes that vary).
  pooled_log <- cbind(real_log, control_log)
  n_varying <- sum(rowMeans(pooled_log^2) - rowMeans(pooled_log)^2 > 0)
  space <- evaluation_space(cbind(real_counts, control_counts), n_genes = 2000,
                            n_pcs = max(1L, min(n_pcs, min(n_varying, 2000L) - 1L, ncol(pooled_log) - 1L)),
                            scale_factor = scale_factor, seed = seed)
  real_points <- .project_log(space, real_log)

  rows <- lapply(names(predictions), function(name) {
    predicted_log <- predictions[[name]]
    predicted_mean <- rowMeans(predicted_log)
    predicted_delta <- predicted_mean - control_mean
    responds <- any(abs(predicted_delta) > 0)
    predicted_degs <- utils::head(order(-abs(.moderated_t(predicted_log, control_log)), seq_along(real_t)), top_k)
    points <- .project_log(space, predicted_log)
    pearson_all <- .pearson(predicted_mean, real_mean)
    pearson_deg <- .pearson(predicted_mean[degs], real_mean[degs])
    values <- c(
      pearson_mean = pearson_all, r2_mean = pearson_all^2,
      pearson_mean_deg = pearson_deg, r2_mean_deg = pearson_deg^2,
      pearson_delta = .pearson(predicted_delta, real_delta),
      pearson_delta_deg = .pearson(predicted_delta[degs], real_delta[degs]),
      deg_overlap = if (responds) length(intersect(degs, predicted_degs)) / top_k else NA_real_,
      energy_distance = energy_distance(points, real_points, max_cells = max_cells, seed = seed),
      mmd_rbf = mmd_rbf(real_points, points, max_cells = max_cells, seed = seed))  # the real cells' kernel
    cbind(prediction = name, .metric_frame(values), stringsAsFactors = FALSE)
  })
  out <- do.call(rbind, rows)
  rownames(out) <- NULL
  attr(out, "degs") <- genes[degs]
  out
}

#' Average response to a perturbation, on the log scale
#'
#' The mean log-normalised expression of perturbed cells minus that of their
#' control cells, `log1p(count / library size * scale_factor)`, per gene;
#' with several groups (pairs of perturbed and control cells, such as cell
#' types or other perturbations), the average over the groups. This is the
#' shift of the `"mean_shift"` baseline of [perturbation_metrics()]: the
#' response a model would predict for a new group if it knew nothing about
#' that group. Given the new group's own control cells (`reference`), the
#' groups can instead weigh by how alike their control cells are to those,
#' as the latent shift of [transfer_cells()] weighs contexts
#' (`shift_bandwidth`): a stronger baseline where responses depend on the
#' starting state.
#'
#' @param perturbed,control Counts (genes x cells) as in
#'   [perturbation_metrics()], or lists of equal length, one element per
#'   group; every set with the genes of the first perturbed one.
#' @param reference `NULL` (default: every group weighs the same), or the
#'   control cells of the group the shift is for (counts, same genes).
#' @param bandwidth With `reference`: each group weighs
#'   `exp(-(d^2 - d_min^2) / (2 h^2))`, `d` the Euclidean distance between
#'   its control cells' mean log expression and the reference's, `h`
#'   `bandwidth` times the median distance between the groups' control
#'   means; `Inf` weighs them the same.
#' @inheritParams perturbation_metrics
#' @return A numeric vector named by gene.
#' @examples
#' sce <- example_pbmc()
#' counts <- SingleCellExperiment::counts(sce)
#' shift <- perturbation_shift(counts[, sce$cell_type == "B"], counts[, sce$cell_type == "NK"])
#' head(sort(shift, decreasing = TRUE))
#' @export
perturbation_shift <- function(perturbed, control, scale_factor = 1e4, assay = NULL, reference = NULL,
                               bandwidth = 0.25) {
  scale_factor <- .check_positive(scale_factor, "scale_factor")
  if (!is.numeric(bandwidth) || length(bandwidth) != 1L || is.na(bandwidth) || bandwidth <= 0) {
    stop("`bandwidth` must be a positive number (Inf: every group weighs the same)", call. = FALSE)
  }
  as_groups <- function(x) if (is.list(x)) x else list(x)
  perturbed <- as_groups(perturbed)
  control <- as_groups(control)
  if (!length(perturbed) || length(perturbed) != length(control)) {
    stop(sprintf("`perturbed` and `control` must give the same number of groups (%d and %d)",
                 length(perturbed), length(control)), call. = FALSE)
  }
  first <- .metric_counts(perturbed[[1]], assay, if (length(perturbed) > 1) "perturbed[[1]]" else "perturbed")
  shifts <- lapply(seq_along(perturbed), function(i) {
    label <- function(arg) if (length(perturbed) > 1) sprintf("%s[[%d]]", arg, i) else arg
    p <- .match_genes(first, .metric_counts(perturbed[[i]], assay, label("perturbed")), "perturbed", label("perturbed"))
    c <- .match_genes(first, .metric_counts(control[[i]], assay, label("control")), "perturbed", label("control"))
    control_mean <- rowMeans(.dense_log(c, scale_factor))
    list(shift = rowMeans(.dense_log(p, scale_factor)) - control_mean, control = control_mean)
  })
  weights <- rep(1, length(shifts))
  if (!is.null(reference) && is.finite(bandwidth) && length(shifts) > 1L) {
    own <- rowMeans(.dense_log(.match_genes(first, .metric_counts(reference, assay, "reference"), "perturbed",
                                            "reference"), scale_factor))
    controls <- vapply(shifts, `[[`, numeric(length(own)), "control")  # (genes, groups)
    scale <- stats::median(stats::dist(t(controls)))
    if (scale > 0) {
      d2 <- colSums((controls - own)^2)
      weights <- exp(-(d2 - min(d2)) / (2 * (bandwidth * scale)^2))
    }
  }
  total <- Reduce(`+`, Map(function(s, w) w * s$shift, shifts, weights))
  stats::setNames(total / sum(weights), rownames(first))
}

# One prediction or a named list of them, as a named list (NULL: none).
.named_predictions <- function(predicted) {
  if (is.null(predicted)) return(list())
  if (is.list(predicted)) {
    if (!length(predicted) || is.null(names(predicted)) || any(!nzchar(names(predicted))) ||
        anyDuplicated(names(predicted))) {
      stop("a list `predicted` needs one unique name per prediction", call. = FALSE)
    }
    return(predicted)
  }
  list(predicted = predicted)
}

.dense_log <- function(counts, scale_factor) as.matrix(.log_normalise(counts, scale_factor))

# Log-scale cells shifted by a per-gene response; expression stays >= 0.
.shifted <- function(log_values, shift) pmax(log_values + shift, 0)

.check_shift <- function(shift, genes, arg) {
  if (!is.numeric(shift) || is.null(names(shift)) || any(!is.finite(shift))) {
    stop(sprintf("`%s` must be a finite numeric vector named by gene (as perturbation_shift() returns)", arg),
         call. = FALSE)
  }
  missing <- setdiff(genes, names(shift))
  if (length(missing)) {
    stop(sprintf("`%s` lacks %d of the %d genes of `real` (%s)", arg, length(missing), length(genes),
                 .first_few(missing)), call. = FALSE)
  }
  shift[genes]
}

# Moderated Welch statistic per gene (rows) of a against b: the difference of
# means over (standard error + s0), with s0 the median of the genes' non-zero
# standard errors (SAM's fudge factor, Tusher et al. 2001). Without s0 a gene that is
# constant in both sets (a baseline that shifts constant control cells) has
# an infinite statistic and tops the ranking however small its shift.
.moderated_t <- function(a, b) {
  ma <- .row_mean_var(a)
  mb <- .row_mean_var(b)
  se <- sqrt(ma$var / ncol(a) + mb$var / ncol(b))
  s0 <- if (any(se > 0)) stats::median(se[se > 0]) else 1
  (ma$mean - mb$mean) / (se + s0)
}

# Pearson correlation, NA when either side is constant.
.pearson <- function(a, b) {
  if (length(a) < 2L || stats::sd(a) == 0 || stats::sd(b) == 0) return(NA_real_)
  stats::cor(a, b)
}
