# Evaluation metrics: gene-level agreement on counts.
# (Metric names and directions: R/metrics_table.R.)

#' Agreement of per-gene statistics between real and generated cells
#'
#' For every gene: the mean and the variance of log-normalised expression,
#' `log1p(count / library size * scale_factor)`, and the fraction of cells
#' with a zero count, computed separately on the real and on the generated
#' cells; then the Pearson and Spearman correlations, across genes, between
#' the real and the generated values. A statistic that is constant across
#' genes in either set gives `NA`.
#'
#' @param real,generated Counts (genes x cells) as a SingleCellExperiment, a
#'   Seurat object, a dgCMatrix or a dense matrix, with the same genes
#'   (matched by name; the order may differ). Each needs at least 2 cells.
#' @param scale_factor Library size the cells are normalised to.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @return A data.frame with columns `statistic` (`"mean"`, `"variance"`,
#'   `"zero_fraction"`), `method` (`"pearson"`, `"spearman"`) and `value`.
#' @examples
#' sce <- example_pbmc()
#' gene_statistics_agreement(sce[, 1:600], sce[, 601:1200])
#' @export
gene_statistics_agreement <- function(real, generated, scale_factor = 1e4, assay = NULL) {
  scale_factor <- .check_positive(scale_factor, "scale_factor")
  real <- .metric_counts(real, assay, "real")
  generated <- .match_genes(real, .metric_counts(generated, assay, "generated"))
  .gene_statistics_agreement(real, generated, scale_factor)
}

.gene_statistics_agreement <- function(real, generated, scale_factor) {
  for (arg in c("real", "generated")) {
    if (ncol(get(arg)) < 2L) {
      stop(sprintf("`%s` has %d cell; at least 2 are needed", arg, ncol(get(arg))), call. = FALSE)
    }
  }
  summarise <- function(counts) {
    moments <- .row_mean_var(.log_normalise(counts, scale_factor))
    list(mean = moments$mean, variance = moments$var, zero_fraction = .zero_fraction(counts))
  }
  r <- summarise(real)
  g <- summarise(generated)
  rows <- expand.grid(method = c("pearson", "spearman"), statistic = names(r),
                      stringsAsFactors = FALSE)[, c("statistic", "method")]
  rows$value <- mapply(function(statistic, method) {
    a <- r[[statistic]]
    b <- g[[statistic]]
    if (stats::sd(a) == 0 || stats::sd(b) == 0) return(NA_real_)
    stats::cor(a, b, method = method)
  }, rows$statistic, rows$method, USE.NAMES = FALSE)
  rows
}

#' Distance between the library-size distributions of real and generated cells
#'
#' Compares the total counts per cell on the `log10(1 + library size)` scale
#' (so empty cells are allowed): the exact 1-D Wasserstein-1 distance and the
#' two-sample Kolmogorov-Smirnov statistic (largest gap between the two
#' empirical distribution functions).
#'
#' @inheritParams gene_statistics_agreement
#' @return A named numeric vector: `wasserstein_1` and `ks`.
#' @examples
#' sce <- example_pbmc()
#' library_size_distance(sce[, 1:600], sce[, 601:1200])
#' @export
library_size_distance <- function(real, generated, assay = NULL) {
  real <- .metric_counts(real, assay, "real")
  generated <- .match_genes(real, .metric_counts(generated, assay, "generated"))
  .library_size_distance(real, generated)
}

.library_size_distance <- function(real, generated) {
  a <- log10(1 + .library_sizes(real))
  b <- log10(1 + .library_sizes(generated))
  points <- sort(unique(c(a, b)))
  c(wasserstein_1 = .wasserstein_1d_power(a, b, 1),
    ks = max(abs(stats::ecdf(a)(points) - stats::ecdf(b)(points))))
}

#' Distance between the gene-gene correlation matrices of real and generated cells
#'
#' Takes the `n_genes` genes with the largest variance of log-normalised
#' expression, `log1p(count / library size * scale_factor)`, in the REAL
#' cells, computes their gene-gene Pearson correlation matrix on the
#' log-normalised values of each set, and returns the Frobenius norm of the
#' difference divided by the number of genes, `||C_real - C_gen||_F / n_genes`
#' (the root mean square difference over all `n_genes^2` entries; between 0
#' and 2). A gene constant in one set has correlation 0 with the other genes
#' there.
#'
#' @inheritParams gene_statistics_agreement
#' @param n_genes Number of genes (at least 2; all varying genes when fewer).
#' @return One non-negative number.
#' @examples
#' sce <- example_pbmc()
#' correlation_matrix_distance(sce[, 1:600], sce[, 601:1200], n_genes = 50)
#' @export
correlation_matrix_distance <- function(real, generated, n_genes = 100, scale_factor = 1e4,
                                        assay = NULL) {
  n_genes <- .check_count(n_genes, "n_genes", min = 2)
  scale_factor <- .check_positive(scale_factor, "scale_factor")
  real <- .metric_counts(real, assay, "real")
  generated <- .match_genes(real, .metric_counts(generated, assay, "generated"))
  .correlation_matrix_distance(real, generated, n_genes, scale_factor)
}

.correlation_matrix_distance <- function(real, generated, n_genes, scale_factor) {
  for (arg in c("real", "generated")) {
    if (ncol(get(arg)) < 2L) {
      stop(sprintf("`%s` has %d cell; at least 2 are needed", arg, ncol(get(arg))), call. = FALSE)
    }
  }
  real_log <- .log_normalise(real, scale_factor)
  variance <- .row_mean_var(real_log)$var
  varying <- which(variance > 0)
  if (length(varying) < 2L) {
    stop(sprintf("`real` has %d genes that vary across cells; at least 2 are needed",
                 length(varying)), call. = FALSE)
  }
  chosen <- sort(utils::head(varying[order(-variance[varying], varying)], n_genes))
  correlations <- function(lognorm) {
    values <- as.matrix(lognorm[chosen, , drop = FALSE])
    constant <- apply(values, 1, function(v) all(v == v[1]))
    out <- matrix(0, length(chosen), length(chosen))
    if (sum(!constant) > 0) out[!constant, !constant] <- stats::cor(t(values[!constant, , drop = FALSE]))
    diag(out) <- 1
    out
  }
  difference <- correlations(real_log) - correlations(.log_normalise(generated, scale_factor))
  sqrt(sum(difference^2)) / length(chosen)
}
