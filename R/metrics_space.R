# Evaluation metrics: the evaluation space (a PCA fitted on real cells) and projections into it.
# (Metric names and directions: R/metrics_table.R.)

#' A PCA space fitted on real cells, for comparing generated cells with them
#'
#' Fits the space in which the distribution metrics compare cells, on the
#' REAL cells only, so that every generator is judged in the same coordinates:
#' counts are library-size normalised and log transformed,
#' `log1p(count / library size * scale_factor)` (library size = the cell's
#' total over all genes; a cell with no counts stays at 0); the `n_genes`
#' highly variable genes are the genes with the largest sample variance of
#' these log-normalised values (genes that do not vary are never chosen; all
#' varying genes are kept when there are fewer); their values are centred
#' (and, with `scale = TRUE`, scaled to unit variance) and reduced to `n_pcs`
#' principal components (a truncated SVD with `irlba` when `n_pcs` is small
#' against the matrix, the full `svd()` otherwise). Each component's sign is
#' fixed so that its largest loading is positive.
#'
#' @param real Real cells: a SingleCellExperiment (counts in `assay`), a
#'   Seurat object, a dgCMatrix or a dense matrix of counts (genes x cells,
#'   gene names as rownames).
#' @param n_genes Number of highly variable genes.
#' @param n_pcs Number of principal components; at most one less than both
#'   the number of selected genes and of cells.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @param scale_factor Library size the cells are normalised to.
#' @param scale Scale each gene to unit variance before the PCA (default
#'   `FALSE`: centring only, so that low-variance genes do not weigh as much
#'   as the informative ones).
#' @param seed Seed of the truncated SVD's random start.
#' @return An `exprflow_evaluation_space`: a list with `genes` (the selected
#'   genes), `centres` and `scales` (per gene; `scales` is `NULL` without
#'   scaling), `rotation` (genes x PCs loadings), `sdev` (standard deviation
#'   of each PC), `variance_explained` (fraction of the selected genes' total
#'   variance per PC), `gene_variance` (the selection statistic of the
#'   selected genes), `scale_factor`, `n_cells` and `scaled`.
#' @seealso [project_cells()], [generation_metrics()]
#' @examples
#' sce <- example_pbmc()
#' space <- evaluation_space(sce, n_genes = 500, n_pcs = 10)
#' space
#' dim(project_cells(space, sce))
#' @export
evaluation_space <- function(real, n_genes = 2000, n_pcs = 30, assay = NULL,
                             scale_factor = 1e4, scale = FALSE, seed = 1) {
  n_genes <- .check_count(n_genes, "n_genes", min = 2)
  n_pcs <- .check_count(n_pcs, "n_pcs", min = 1)
  scale_factor <- .check_positive(scale_factor, "scale_factor")
  .check_flag(scale, "scale")
  seed <- .check_count(seed, "seed", min = 0)
  counts <- .metric_counts(real, assay, "real")
  if (ncol(counts) < 3L) {
    stop(sprintf("`real` has %d cells; at least 3 are needed to fit an evaluation space",
                 ncol(counts)), call. = FALSE)
  }
  lognorm <- .log_normalise(counts, scale_factor)
  variance <- .row_mean_var(lognorm)$var
  names(variance) <- rownames(counts)
  varying <- which(variance > 0)
  if (length(varying) < 2L) {
    stop(sprintf("`real` has %d genes that vary across cells; at least 2 are needed",
                 length(varying)), call. = FALSE)
  }
  ranked <- varying[order(-variance[varying], varying)]
  chosen <- sort(utils::head(ranked, n_genes))
  genes <- rownames(counts)[chosen]
  max_pcs <- min(length(genes), ncol(counts)) - 1L
  if (n_pcs > max_pcs) {
    stop(sprintf(paste0("`n_pcs` (%d) must be at most %d: one less than the smaller of the number ",
                        "of selected genes (%d) and of cells (%d) in `real`"),
                 n_pcs, max_pcs, length(genes), ncol(counts)), call. = FALSE)
  }
  values <- t(as.matrix(lognorm[chosen, , drop = FALSE]))  # cells x genes
  centres <- colMeans(values)
  values <- values - rep(centres, each = nrow(values))
  scales <- NULL
  if (scale) {
    scales <- sqrt(variance[chosen])
    values <- values / rep(scales, each = nrow(values))
  }
  total_variance <- sum(values^2) / (nrow(values) - 1)
  if (n_pcs <= min(dim(values)) / 3 && min(dim(values)) > 50) {
    decomposition <- .with_seed(seed, irlba::irlba(values, nv = n_pcs, nu = 0, maxit = 1000))
  } else {
    decomposition <- svd(values, nu = 0, nv = n_pcs)
  }
  rotation <- decomposition$v[, seq_len(n_pcs), drop = FALSE]
  # Deterministic signs: the largest loading of every component is positive.
  largest <- rotation[cbind(apply(abs(rotation), 2, which.max), seq_len(n_pcs))]
  rotation <- rotation * rep(ifelse(largest < 0, -1, 1), each = nrow(rotation))
  dimnames(rotation) <- list(genes, paste0("PC", seq_len(n_pcs)))
  sdev <- decomposition$d[seq_len(n_pcs)] / sqrt(nrow(values) - 1)
  structure(list(genes = genes, centres = stats::setNames(centres, genes),
                 scales = if (scale) stats::setNames(scales, genes) else NULL,
                 rotation = rotation, sdev = sdev,
                 variance_explained = stats::setNames(sdev^2 / total_variance, colnames(rotation)),
                 gene_variance = variance[chosen], scale_factor = scale_factor,
                 n_cells = ncol(counts), scaled = scale),
            class = "exprflow_evaluation_space")
}

#' @export
print.exprflow_evaluation_space <- function(x, ...) {
  cat("<exprflow_evaluation_space>\n")
  cat(sprintf("  fitted on %d real cells; %d genes with the largest variance of\n", x$n_cells,
              length(x$genes)))
  cat(sprintf("  log1p(count / library size * %s)\n", format(x$scale_factor)))
  cat(sprintf("  %d principal components (%s), explaining %.1f%% of their variance (PC1 %.1f%%)\n",
              ncol(x$rotation), if (isTRUE(x$scaled)) "centred and scaled" else "centred",
              100 * sum(x$variance_explained), 100 * x$variance_explained[1]))
  invisible(x)
}

#' Project cells into an evaluation space
#'
#' Normalises the counts of `x` exactly as [evaluation_space()] normalised the
#' real cells (library size = the cell's total over ALL genes of `x`, so `x`
#' should hold the same genes as the real data), keeps the space's genes
#' (matched by name), centres (and scales) them with the real cells' values
#' and applies the rotation.
#'
#' @param space An `exprflow_evaluation_space`.
#' @param x Cells to project: a SingleCellExperiment, a Seurat object, a
#'   dgCMatrix or a dense matrix of counts (genes x cells, gene names as
#'   rownames). Every gene of the space must be present.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @return A cells x PCs matrix (rownames = cell names, colnames `PC1`, ...).
#' @examples
#' sce <- example_pbmc()
#' space <- evaluation_space(sce[, 1:600], n_genes = 500, n_pcs = 10)
#' head(project_cells(space, sce[, 601:1200]))
#' @export
project_cells <- function(space, x, assay = NULL) {
  .check_space(space)
  .project_counts(space, .metric_counts(x, assay, "x"), "x")
}

.check_space <- function(space, arg = "space") {
  if (!inherits(space, "exprflow_evaluation_space")) {
    stop(sprintf("`%s` must be an exprflow_evaluation_space (from evaluation_space()); got '%s'",
                 arg, class(space)[1]), call. = FALSE)
  }
}

.project_counts <- function(space, counts, arg) {
  missing <- setdiff(space$genes, rownames(counts))
  if (length(missing)) {
    stop(sprintf("`%s` lacks %d of the evaluation space's %d genes (%s)", arg, length(missing),
                 length(space$genes), .first_few(missing)), call. = FALSE)
  }
  library_size <- .library_sizes(counts)
  .project_log(space, .log_normalise(counts[space$genes, , drop = FALSE], space$scale_factor, library_size))
}

# Log-normalised expression (genes x cells, the space's genes among its rows)
# in the space's components: cells x PCs.
.project_log <- function(space, lognorm) {
  values <- t(as.matrix(lognorm[space$genes, , drop = FALSE]))  # cells x genes
  values <- values - rep(space$centres, each = nrow(values))
  if (!is.null(space$scales)) values <- values / rep(space$scales, each = nrow(values))
  out <- values %*% space$rotation
  dimnames(out) <- list(colnames(lognorm), colnames(space$rotation))
  out
}
