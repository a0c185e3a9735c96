# Evaluation metrics: generation_metrics(), every generation metric in one call.
# (Metric names and directions: R/metrics_table.R.)

#' All generation metrics in one call
#'
#' Compares generated cells with real ones. In a PCA [evaluation_space()]
#' fitted on real cells: [mmd_rbf()] (`mmd_rbf`), [energy_distance()]
#' (`energy_distance`), sliced [wasserstein_distance()] with p = 1 and 2
#' (`wasserstein_1`, `wasserstein_2`), [knn_classifier_auc()] (`knn_auc`),
#' [precision_recall_density_coverage()] (`precision`, `recall`, `density`,
#' `coverage`) and, with `condition`, [condition_accuracy()]
#' (`condition_accuracy`); these use the same number of real and generated
#' cells (the larger set is subsampled, seeded). On the counts, with all
#' cells: [gene_statistics_agreement()] (`mean_pearson`, `mean_spearman`,
#' `variance_pearson`, `variance_spearman`, `zero_fraction_pearson`,
#' `zero_fraction_spearman`), [library_size_distance()] (`library_size_w1`,
#' `library_size_ks`) and [correlation_matrix_distance()]
#' (`correlation_matrix_distance`).
#'
#' **Why cross-fitting.** Cells that a PCA was fitted on are more spread
#' along its trailing components than new cells from the same distribution
#' (the trailing components partly fit the noise of those very cells). With
#' 600 PBMCs and 30 components, unseen PBMCs have about a fifth of the fitted
#' cells' variance on components 20-30, so a kNN classifier separates them
#' from the fitted cells (AUC about 0.7) although both are real. Generated
#' cells are always unseen, so a space fitted on all real cells favours a
#' model that copies them. With `space_fit = "cross"` (default) the real
#' cells are split in two halves (seeded, stratified by `condition`), the
#' space is fitted on one half and the other half is compared with the
#' generated cells (both unseen by the fit), and the embedding metrics are
#' averaged over the two halves (a label with a single real cell is in one
#' half only: the other half's condition accuracy leaves out the generated
#' cells of that label). `space_fit = "all"` fits one space on all
#' real cells and compares all of them (biased as described); a given
#' `space` is used as it is.
#'
#' @param real,generated Counts (genes x cells, the same genes) as a
#'   SingleCellExperiment, a Seurat object, a dgCMatrix or a dense matrix.
#' @param condition `NULL`; the name of a colData (cell covariate) column
#'   present in both `real` and `generated`; or a list with elements `real`
#'   and `generated`, one label per cell of each.
#' @param space An `exprflow_evaluation_space` to use instead of fitting one
#'   (then `space_fit` is ignored).
#' @param k Neighbours of the kNN classifier and of the precision/recall radii.
#' @param seed Seed of every random step.
#' @param max_cells Largest number of cells per set used by the
#'   distribution metrics (seeded subsample).
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @param n_genes,n_pcs,scale_factor Passed to [evaluation_space()] when
#'   `space` is `NULL`; `scale_factor` also normalises the gene-level metrics.
#' @param n_projections Directions of the sliced Wasserstein distances.
#' @param correlation_genes Genes of [correlation_matrix_distance()].
#' @param condition_k Neighbours of [condition_accuracy()].
#' @param space_fit `"cross"` (two-fold cross-fitting of the space, see
#'   above) or `"all"` (one space fitted on all real cells).
#' @return A data.frame with one row per metric and columns `metric`,
#'   `value` and `lower_is_better` (`TRUE` for distances and the classifier
#'   AUC, `FALSE` for correlations, precision, recall, density, coverage and
#'   accuracy).
#' @examples
#' # Two halves of the same real cells (every other cell of each type): what
#' # "indistinguishable" scores.
#' sce <- example_pbmc()[, 1:400]  # a slice, so that the example runs in seconds
#' half <- unlist(lapply(split(seq_len(ncol(sce)), sce$cell_type), function(i) i[c(TRUE, FALSE)]))
#' generation_metrics(sce[, half], sce[, -half], condition = "cell_type",
#'                    n_genes = 500, n_pcs = 10)
#' @export
generation_metrics <- function(real, generated, condition = NULL, space = NULL, k = 5, seed = 1,
                               max_cells = 2000, assay = NULL, n_genes = 2000, n_pcs = 30,
                               scale_factor = 1e4, n_projections = 200, correlation_genes = 100,
                               condition_k = 15, space_fit = c("cross", "all")) {
  k <- .check_count(k, "k", min = 1)
  seed <- .check_count(seed, "seed", min = 0)
  max_cells <- .check_count(max_cells, "max_cells", min = 2)
  scale_factor <- .check_positive(scale_factor, "scale_factor")
  n_projections <- .check_count(n_projections, "n_projections", min = 1)
  correlation_genes <- .check_count(correlation_genes, "correlation_genes", min = 2)
  condition_k <- .check_count(condition_k, "condition_k", min = 1)
  if (identical(space_fit, c("cross", "all"))) space_fit <- "cross"
  if (!is.character(space_fit) || length(space_fit) != 1L || !space_fit %in% c("cross", "all")) {
    stop("`space_fit` must be \"cross\" or \"all\"", call. = FALSE)
  }
  if (!is.null(space)) .check_space(space)
  real_input <- .metric_input(real, assay, "real")
  generated_input <- .metric_input(generated, assay, "generated")
  real_counts <- real_input$counts
  generated_counts <- .match_genes(real_counts, generated_input$counts)
  labels <- .generation_labels(condition, real_input, generated_input)
  if (!is.null(labels)) {
    unseen <- setdiff(labels$generated, labels$real)
    if (length(unseen)) {
      stop(sprintf("`condition`: %d generated labels are absent from the real cells (%s)", length(unseen),
                   .first_few(unseen)), call. = FALSE)
    }
  }
  settings <- list(k = k, seed = seed, max_cells = max_cells, n_projections = n_projections,
                   condition_k = condition_k)

  if (!is.null(space) || space_fit == "all") {
    if (is.null(space)) {
      space <- evaluation_space(real_counts, n_genes = n_genes, n_pcs = n_pcs,
                                scale_factor = scale_factor, seed = seed)
    }
    embedded <- .embedding_generation_metrics(
      .project_counts(space, real_counts, "real"), labels$real,
      .project_counts(space, generated_counts, "generated"), labels$generated, settings)
  } else {
    if (ncol(real_counts) < 6L) {
      stop(sprintf("`real` has %d cells; cross-fitting needs at least 6 (or use space_fit = \"all\")",
                   ncol(real_counts)), call. = FALSE)
    }
    half <- .with_seed(seed, .stratified_folds(if (is.null(labels)) rep("", ncol(real_counts))
                                               else labels$real, 2L))
    folds <- lapply(1:2, function(h) {
      fit_cells <- which(half != h)
      compared <- which(half == h)
      fold_space <- evaluation_space(real_counts[, fit_cells, drop = FALSE], n_genes = n_genes,
                                     n_pcs = n_pcs, scale_factor = scale_factor, seed = seed)
      .embedding_generation_metrics(
        .project_counts(fold_space, real_counts[, compared, drop = FALSE], "real"),
        labels$real[compared], .project_counts(fold_space, generated_counts, "generated"),
        labels$generated, settings)
    })
    embedded <- (folds[[1]] + folds[[2]]) / 2
  }

  genes <- .gene_statistics_agreement(real_counts, generated_counts, scale_factor)
  library_size <- .library_size_distance(real_counts, generated_counts)
  values <- c(
    embedded,
    stats::setNames(genes$value, paste(genes$statistic, genes$method, sep = "_")),
    library_size_w1 = library_size[["wasserstein_1"]],
    library_size_ks = library_size[["ks"]],
    correlation_matrix_distance = .correlation_matrix_distance(real_counts, generated_counts,
                                                               correlation_genes, scale_factor))
  # condition_accuracy (computed in the space) goes last.
  values <- values[c(setdiff(names(values), "condition_accuracy"),
                     intersect("condition_accuracy", names(values)))]
  .metric_frame(values)
}

# The metrics computed in an evaluation space, on equally many real and
# generated cells (each subsampled to the smaller size and `max_cells`).
.embedding_generation_metrics <- function(real, real_labels, generated, generated_labels, settings) {
  n <- min(nrow(real), nrow(generated), settings$max_cells)
  picked <- .with_seed(settings$seed, list(
    real = if (nrow(real) > n) sort(sample.int(nrow(real), n)) else seq_len(nrow(real)),
    generated = if (nrow(generated) > n) sort(sample.int(nrow(generated), n)) else
      seq_len(nrow(generated)),
    # The classifier of condition_accuracy learns from every real cell (up
    # to max_cells), not only as many as were generated: a small generated
    # set would otherwise leave rare labels out of its reference.
    reference = if (nrow(real) > settings$max_cells) sort(sample.int(nrow(real), settings$max_cells)) else
      seq_len(nrow(real))))
  reference <- real[picked$reference, , drop = FALSE]
  real <- real[picked$real, , drop = FALSE]
  generated <- generated[picked$generated, , drop = FALSE]
  seed <- settings$seed
  values <- c(
    mmd_rbf = mmd_rbf(real, generated, max_cells = n, seed = seed),
    energy_distance = energy_distance(real, generated, max_cells = n, seed = seed),
    wasserstein_1 = wasserstein_distance(real, generated, p = 1,
                                         n_projections = settings$n_projections, seed = seed),
    wasserstein_2 = wasserstein_distance(real, generated, p = 2,
                                         n_projections = settings$n_projections, seed = seed),
    knn_auc = knn_classifier_auc(real, generated, k = settings$k, seed = seed, max_cells = n),
    precision_recall_density_coverage(real, generated, k = settings$k, max_cells = n, seed = seed))
  if (!is.null(real_labels)) {
    reference_labels <- real_labels[picked$reference]
    generated_labels <- generated_labels[picked$generated]
    # A rare label can be missing from a cross-fitting half of the real
    # cells (a label with one cell always is) or from their subsample; its
    # generated cells cannot be classified by a reference without the label,
    # and are left out here (the caller checked that every generated label
    # is among the real ones).
    known <- generated_labels %in% reference_labels
    values["condition_accuracy"] <- if (!any(known)) NA_real_ else as.numeric(condition_accuracy(
      reference, reference_labels, generated[known, , drop = FALSE], generated_labels[known],
      k = settings$condition_k))
  }
  values
}

# Labels of real and generated cells from `condition` (NULL, a column name or a list).
.generation_labels <- function(condition, real_input, generated_input) {
  if (is.null(condition)) return(NULL)
  n_real <- ncol(real_input$counts)
  n_generated <- ncol(generated_input$counts)
  if (is.list(condition) && !is.data.frame(condition)) {
    if (!all(c("real", "generated") %in% names(condition))) {
      stop("`condition` given as a list needs elements `real` and `generated`", call. = FALSE)
    }
    return(list(real = .check_labels(condition$real, n_real, "condition$real", "real"),
                generated = .check_labels(condition$generated, n_generated,
                                          "condition$generated", "generated")))
  }
  if (!is.character(condition) || length(condition) != 1L || is.na(condition)) {
    stop(paste0("`condition` must be NULL, the name of a cell covariate column present in both ",
                "`real` and `generated`, or a list(real = , generated = ) of labels"),
         call. = FALSE)
  }
  column <- function(input, arg) {
    covariates <- input$covariates
    if (is.null(covariates) || !condition %in% colnames(covariates)) {
      stop(sprintf(paste0("condition column '%s' is not among the cell covariates of `%s` ",
                          "(available: %s); matrix input has none, pass ",
                          "list(real = , generated = ) labels instead"), condition, arg,
                   if (is.null(covariates) || !ncol(covariates)) "none" else
                     .first_few(colnames(covariates), 10L)), call. = FALSE)
    }
    .check_labels(covariates[[condition]], ncol(input$counts), sprintf("%s$%s", arg, condition), arg)
  }
  list(real = column(real_input, "real"), generated = column(generated_input, "generated"))
}
