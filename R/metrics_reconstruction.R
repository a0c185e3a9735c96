# Evaluation metrics: reconstructions of observed cells.
# (Metric names and directions: R/metrics_table.R.)

#' How faithfully reconstructed expression matches the observed expression
#'
#' Pearson correlation between observed and reconstructed values, per cell
#' (across genes) and per gene (across cells), on two scales: `log`, the
#' log-normalised values `log1p(value / library size * scale_factor)` (each
#' matrix normalised by its own library sizes), and `counts`, the raw values.
#' A cell or gene that is constant in either matrix has no correlation; it is
#' left out of the median and mean and counted in the `_dropped` rows.
#' Cells are processed in blocks, so sparse input is never densified whole.
#'
#' @param observed Observed counts (genes x cells): a SingleCellExperiment,
#'   a Seurat object, a dgCMatrix or a dense matrix.
#' @param reconstructed Reconstructed counts or expected counts (non-negative,
#'   not necessarily whole numbers) of the same dimensions; when both have
#'   gene (row) names they must be identical.
#' @param scale_factor Library size the cells are normalised to.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @return A data.frame with columns `metric`, `value` and `lower_is_better`:
#'   for `axis` in `cell`, `gene` and `scale` in `log`, `counts`, the rows
#'   `<axis>_pearson_<scale>_median`, `<axis>_pearson_<scale>_mean`
#'   (`lower_is_better = FALSE`) and `<axis>_pearson_<scale>_dropped` (the
#'   number of cells or genes without a correlation; `lower_is_better = NA`).
#' @examples
#' counts <- SingleCellExperiment::counts(example_pbmc())[, 1:200]
#' noisy <- counts + matrix(rpois(length(counts), 0.5), nrow(counts))
#' reconstruction_metrics(counts, noisy)
#' @export
reconstruction_metrics <- function(observed, reconstructed, scale_factor = 1e4, assay = NULL) {
  scale_factor <- .check_positive(scale_factor, "scale_factor")
  observed <- .metric_counts(observed, assay, "observed", need_genes = FALSE)
  reconstructed <- .metric_counts(reconstructed, assay, "reconstructed", need_genes = FALSE)
  if (!identical(dim(observed), dim(reconstructed))) {
    stop(sprintf("`observed` (%d x %d) and `reconstructed` (%d x %d) must have the same dimensions",
                 nrow(observed), ncol(observed), nrow(reconstructed), ncol(reconstructed)),
         call. = FALSE)
  }
  if (!is.null(rownames(observed)) && !is.null(rownames(reconstructed)) &&
      !identical(rownames(observed), rownames(reconstructed))) {
    stop("`observed` and `reconstructed` have different gene (row) names or gene order",
         call. = FALSE)
  }
  library_observed <- .library_sizes(observed)
  library_reconstructed <- .library_sizes(reconstructed)
  n_cells <- ncol(observed)
  block <- max(1L, floor(5e6 / nrow(observed)))
  cell_r <- list(log = numeric(n_cells), counts = numeric(n_cells))
  genes <- list(log = NULL, counts = NULL)
  for (start in seq(1L, n_cells, by = block)) {
    cells <- start:min(n_cells, start + block - 1L)
    x_block <- observed[, cells, drop = FALSE]
    y_block <- reconstructed[, cells, drop = FALSE]
    # Normalised before densifying: for sparse input only the non-zeros are touched.
    scaled <- list(
      log = list(x = as.matrix(.log_normalise(x_block, scale_factor, library_observed[cells])),
                 y = as.matrix(.log_normalise(y_block, scale_factor, library_reconstructed[cells]))),
      counts = list(x = as.matrix(x_block), y = as.matrix(y_block)))  # (genes, block)
    for (scale in names(scaled)) {
      x <- scaled[[scale]]$x
      y <- scaled[[scale]]$y
      cell_r[[scale]][cells] <- .column_correlations(x, y)
      genes[[scale]] <- .accumulate_row_moments(genes[[scale]], x, y)
    }
  }
  values <- c()
  for (scale in c("log", "counts")) {
    for (axis in c("cell", "gene")) {
      r <- if (axis == "cell") cell_r[[scale]] else .row_correlations(genes[[scale]])
      kept <- r[!is.na(r)]
      prefix <- sprintf("%s_pearson_%s", axis, scale)
      values[paste0(prefix, c("_median", "_mean", "_dropped"))] <-
        c(if (length(kept)) stats::median(kept) else NA_real_, if (length(kept)) mean(kept) else NA_real_,
          sum(is.na(r)))
    }
  }
  .metric_frame(values)
}

# Pearson correlation of matching columns; NA where a column is constant.
.column_correlations <- function(x, y) {
  n <- nrow(x)
  mx <- colSums(x) / n
  my <- colSums(y) / n
  xx <- colSums(x^2)
  yy <- colSums(y^2)
  sx <- xx - n * mx^2
  sy <- yy - n * my^2
  r <- (colSums(x * y) - n * mx * my) / sqrt(sx * sy)
  # Rounding leaves a constant column with a tiny non-zero sum of squares.
  r[sx <= 1e-12 * xx | sy <= 1e-12 * yy] <- NA_real_
  pmin(pmax(r, -1), 1)
}

# Running sums per row (gene) over blocks of cells, shifted by the first
# block's means for numerical stability.
.accumulate_row_moments <- function(moments, x, y) {
  if (is.null(moments)) {
    moments <- list(shift_x = rowMeans(x), shift_y = rowMeans(y), n = 0, sx = 0, sy = 0,
                    sxx = 0, syy = 0, sxy = 0)
  }
  x <- x - moments$shift_x
  y <- y - moments$shift_y
  moments$n <- moments$n + ncol(x)
  moments$sx <- moments$sx + rowSums(x)
  moments$sy <- moments$sy + rowSums(y)
  moments$sxx <- moments$sxx + rowSums(x^2)
  moments$syy <- moments$syy + rowSums(y^2)
  moments$sxy <- moments$sxy + rowSums(x * y)
  moments
}

.row_correlations <- function(moments) {
  n <- moments$n
  vx <- moments$sxx - moments$sx^2 / n
  vy <- moments$syy - moments$sy^2 / n
  r <- (moments$sxy - moments$sx * moments$sy / n) / sqrt(vx * vy)
  r[vx <= 1e-12 * moments$sxx | vy <= 1e-12 * moments$syy | vx <= 0 | vy <= 0] <- NA_real_
  pmin(pmax(r, -1), 1)
}
