# Evaluation metrics: how close generated cells are to real ones (in a PCA
# space fitted on the real cells, and gene by gene), how good an embedding is,
# and how faithful a reconstruction is. Pure R; kNN searches use FNN kd-trees,
# and every all-pairs computation is capped by a seeded subsample so memory
# stays O(max_cells^2) whatever the input size.

# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------

# Evaluates `code` with the RNG seeded by `seed` and puts the caller's RNG
# state back afterwards, so metrics are reproducible and leave the user's
# random stream untouched.
.with_seed <- function(seed, code) {
  env <- globalenv()
  if (exists(".Random.seed", envir = env, inherits = FALSE)) {
    saved <- get(".Random.seed", envir = env, inherits = FALSE)
    on.exit(assign(".Random.seed", saved, envir = env), add = TRUE)
  } else {
    on.exit(if (exists(".Random.seed", envir = env, inherits = FALSE)) {
      rm(".Random.seed", envir = env)
    }, add = TRUE)
  }
  set.seed(seed)
  code
}

.check_flag <- function(x, arg) {
  if (!is.logical(x) || length(x) != 1L || is.na(x)) {
    stop(sprintf("`%s` must be TRUE or FALSE", arg), call. = FALSE)
  }
  invisible(x)
}

.check_positive <- function(x, arg) {
  if (!is.numeric(x) || length(x) != 1L || !is.finite(x) || x <= 0) {
    stop(sprintf("`%s` must be a single positive number", arg), call. = FALSE)
  }
  invisible(as.numeric(x))
}

.is_sparse <- function(x) methods::is(x, "sparseMatrix")

# Counts (genes x cells) of a metric input, as a dgCMatrix or a dense double
# matrix, checked to be finite and non-negative. Whole numbers are not
# required: expected counts of a decoder are valid input too.
.metric_input <- function(x, assay = "counts", arg = "x", need_genes = TRUE) {
  parts <- .counts_and_covariates(x, assay, arg)
  list(counts = .validate_counts(parts$counts, arg, need_genes), covariates = parts$covariates)
}

.metric_counts <- function(x, assay = "counts", arg = "x", need_genes = TRUE) {
  .metric_input(x, assay, arg, need_genes)$counts
}

.validate_counts <- function(counts, arg, need_genes = TRUE) {
  if (need_genes) .check_gene_names(rownames(counts), arg)
  if (.is_sparse(counts)) {
    counts <- methods::as(methods::as(methods::as(counts, "CsparseMatrix"), "generalMatrix"),
                          "dMatrix")
    values <- counts@x
  } else {
    if (methods::is(counts, "Matrix") || methods::is(counts, "DelayedArray")) {
      counts <- as.matrix(counts)
    }
    if (!is.matrix(counts) || !(is.numeric(counts) || is.logical(counts))) {
      stop(sprintf("the counts of `%s` must be a numeric matrix (genes x cells)", arg),
           call. = FALSE)
    }
    storage.mode(counts) <- "double"
    values <- counts
  }
  if (nrow(counts) == 0L) stop(sprintf("`%s` has zero genes", arg), call. = FALSE)
  if (ncol(counts) == 0L) stop(sprintf("`%s` has zero cells", arg), call. = FALSE)
  bad <- sum(!is.finite(values))
  if (bad) {
    stop(sprintf("`%s` has %d missing (NA) or non-finite counts", arg, bad), call. = FALSE)
  }
  if (any(values < 0)) {
    stop(sprintf("`%s` has %d negative counts; counts must be >= 0", arg, sum(values < 0)),
         call. = FALSE)
  }
  counts
}

.library_sizes <- function(counts) {
  if (.is_sparse(counts)) Matrix::colSums(counts) else colSums(counts)
}

# log1p(count / library size * scale_factor); a cell with library size 0 stays 0.
.log_normalise <- function(counts, scale_factor, library_size = .library_sizes(counts)) {
  factor <- ifelse(library_size > 0, scale_factor / library_size, 0)
  if (.is_sparse(counts)) {
    counts@x <- log1p(counts@x * rep(factor, diff(counts@p)))
    return(counts)
  }
  log1p(counts * rep(factor, each = nrow(counts)))
}

# Per-row mean and sample variance of a dense or sparse genes x cells matrix.
.row_mean_var <- function(x) {
  n <- ncol(x)
  if (.is_sparse(x)) {
    mean <- Matrix::rowSums(x) / n
    square <- Matrix::rowSums(x^2) / n
  } else {
    mean <- rowSums(x) / n
    square <- rowSums(x^2) / n
  }
  list(mean = mean, var = pmax(square - mean^2, 0) * n / max(n - 1, 1))
}

.zero_fraction <- function(counts) {
  nonzero <- if (.is_sparse(counts)) Matrix::rowSums(counts > 0) else rowSums(counts > 0)
  1 - nonzero / ncol(counts)
}

# `generated` with the rows of `real` (same gene set required, any order).
.match_genes <- function(real, generated, real_arg = "real", generated_arg = "generated") {
  genes <- rownames(real)
  if (identical(genes, rownames(generated))) return(generated)
  missing <- setdiff(genes, rownames(generated))
  extra <- setdiff(rownames(generated), genes)
  if (length(missing) || length(extra)) {
    stop(sprintf(paste0("`%s` must hold the same genes as `%s`: it lacks %d of them%s and has %d ",
                        "others%s"), generated_arg, real_arg, length(missing),
                 if (length(missing)) paste0(" (", .first_few(missing), ")") else "",
                 length(extra), if (length(extra)) paste0(" (", .first_few(extra), ")") else ""),
         call. = FALSE)
  }
  generated[genes, , drop = FALSE]
}

# A point set (cells x dimensions) as a finite double matrix; a vector is one
# dimension.
.check_points <- function(x, arg, min_rows = 2L) {
  if (is.data.frame(x) && all(vapply(x, is.numeric, logical(1)))) x <- as.matrix(x)
  if (is.numeric(x) && is.null(dim(x))) x <- matrix(x, ncol = 1L)
  if (!is.matrix(x) || !is.numeric(x)) {
    stop(sprintf(paste0("`%s` must be a numeric matrix (cells x dimensions) or a numeric vector; ",
                        "got an object of class '%s'"), arg, class(x)[1]), call. = FALSE)
  }
  bad <- sum(!is.finite(x))
  if (bad) stop(sprintf("`%s` has %d missing (NA) or non-finite values", arg, bad), call. = FALSE)
  if (ncol(x) == 0L) stop(sprintf("`%s` has zero dimensions (columns)", arg), call. = FALSE)
  if (nrow(x) < min_rows) {
    stop(sprintf("`%s` has %d cells (rows); at least %d are needed", arg, nrow(x), min_rows),
         call. = FALSE)
  }
  storage.mode(x) <- "double"
  x
}

.check_same_dims <- function(x, y, x_arg, y_arg) {
  if (ncol(x) != ncol(y)) {
    stop(sprintf("`%s` and `%s` must have the same number of dimensions (columns); got %d and %d",
                 x_arg, y_arg, ncol(x), ncol(y)), call. = FALSE)
  }
}

.check_labels <- function(labels, n, arg, embedding_arg) {
  if (is.null(labels) || !is.atomic(labels) && !is.factor(labels)) {
    stop(sprintf("`%s` must be a vector of labels, one per row of `%s`", arg, embedding_arg),
         call. = FALSE)
  }
  if (length(labels) != n) {
    stop(sprintf("`%s` has %d labels for %d cells (rows of `%s`)", arg, length(labels), n,
                 embedding_arg), call. = FALSE)
  }
  if (anyNA(labels)) {
    stop(sprintf("`%s` has %d missing (NA) labels", arg, sum(is.na(labels))), call. = FALSE)
  }
  as.character(labels)
}

# At most `max_rows` rows of `x`, a random subset in the original order (call
# inside .with_seed()).
.subsample_rows <- function(x, max_rows) {
  if (nrow(x) <= max_rows) return(x)
  x[sort(sample.int(nrow(x), max_rows)), , drop = FALSE]
}

# Squared Euclidean distances between the rows of `a` and of `b` (BLAS-fast;
# callers centre the points first to limit cancellation).
.sq_dist <- function(a, b) {
  d <- outer(rowSums(a^2), rowSums(b^2), "+") - 2 * tcrossprod(a, b)
  d[d < 0] <- 0
  d
}

# Both point sets shifted by their pooled mean (distances are unchanged).
.centre_pair <- function(x, y) {
  centre <- colMeans(rbind(x, y))
  list(x = x - rep(centre, each = nrow(x)), y = y - rep(centre, each = nrow(y)))
}

# Mann-Whitney AUC of `score` for label 1 versus label 0 (ties count one half).
.auc <- function(score, label) {
  r <- rank(score)
  n1 <- sum(label == 1)
  n0 <- sum(label == 0)
  (sum(r[label == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)
}

# Majority vote of the k nearest training cells; ties go to the label whose
# tied neighbours are nearer (a rank bonus that sums to < 1 vote).
.knn_vote <- function(train, train_labels, query, k) {
  train_labels <- factor(train_labels)
  k <- min(k, nrow(train))
  neighbours <- FNN::get.knnx(train, query, k = k)$nn.index
  codes <- matrix(as.integer(train_labels)[neighbours], ncol = k)
  votes <- matrix(0, nrow(query), nlevels(train_labels))
  rows <- seq_len(nrow(query))
  for (j in seq_len(k)) {
    index <- cbind(rows, codes[, j])
    votes[index] <- votes[index] + 1 + (k - j + 1) / (k * (k + 1))
  }
  levels(train_labels)[max.col(votes, ties.method = "first")]
}

# Fold of each element, balanced within each group of `strata`.
.stratified_folds <- function(strata, folds) {
  fold <- integer(length(strata))
  for (s in unique(strata)) {
    index <- which(strata == s)
    fold[index] <- sample(rep_len(seq_len(folds), length(index)))
  }
  fold
}

# ---------------------------------------------------------------------------
# Evaluation space
# ---------------------------------------------------------------------------

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
#' @param assay For a SingleCellExperiment: the assay of counts.
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
evaluation_space <- function(real, n_genes = 2000, n_pcs = 30, assay = "counts",
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
#' @param assay For a SingleCellExperiment: the assay of counts.
#' @return A cells x PCs matrix (rownames = cell names, colnames `PC1`, ...).
#' @examples
#' sce <- example_pbmc()
#' space <- evaluation_space(sce[, 1:600], n_genes = 500, n_pcs = 10)
#' head(project_cells(space, sce[, 601:1200]))
#' @export
project_cells <- function(space, x, assay = "counts") {
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
  lognorm <- .log_normalise(counts[space$genes, , drop = FALSE], space$scale_factor, library_size)
  values <- t(as.matrix(lognorm))  # cells x genes
  values <- values - rep(space$centres, each = nrow(values))
  if (!is.null(space$scales)) values <- values / rep(space$scales, each = nrow(values))
  out <- values %*% space$rotation
  dimnames(out) <- list(colnames(counts), colnames(space$rotation))
  out
}

# ---------------------------------------------------------------------------
# Distribution distances between two point sets
# ---------------------------------------------------------------------------

#' Maximum mean discrepancy with RBF kernels
#'
#' Squared MMD between the rows of `x` and `y` with the Gaussian kernel
#' `exp(-||a - b||^2 / (2 * bandwidth^2))`, averaged over the bandwidths. The
#' default estimate is the biased V-statistic (means over all pairs, diagonals
#' included), which is never negative and exactly 0 for identical sets;
#' `unbiased = TRUE` gives the U-statistic (diagonals of the within-set
#' kernel matrices left out; it can be slightly negative). Each set is first
#' subsampled to at most `max_cells` rows (seeded).
#'
#' @param x,y Numeric matrices (cells x dimensions, same number of columns) or
#'   numeric vectors.
#' @param bandwidths Kernel bandwidths (positive numbers). `NULL` (default):
#'   the median pairwise Euclidean distance of the pooled cells (from a seeded
#'   subsample of at most 1,000 pooled cells) times `c(0.5, 1, 2)`.
#' @param max_cells Largest number of cells used from each set.
#' @param seed Seed of the subsampling.
#' @param unbiased Return the unbiased U-statistic instead of the V-statistic.
#' @return One number: the squared MMD averaged over the bandwidths (between
#'   0 and 2 for the biased estimate; 0 = same distribution).
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(400), ncol = 2)
#' mmd_rbf(x, matrix(rnorm(400), ncol = 2))       # small
#' mmd_rbf(x, matrix(rnorm(400, 3), ncol = 2))    # large
#' @export
mmd_rbf <- function(x, y, bandwidths = NULL, max_cells = 2000, seed = 1, unbiased = FALSE) {
  x <- .check_points(x, "x")
  y <- .check_points(y, "y")
  .check_same_dims(x, y, "x", "y")
  max_cells <- .check_count(max_cells, "max_cells", min = 2)
  seed <- .check_count(seed, "seed", min = 0)
  .check_flag(unbiased, "unbiased")
  if (!is.null(bandwidths) && (!is.numeric(bandwidths) || !length(bandwidths) ||
                               any(!is.finite(bandwidths)) || any(bandwidths <= 0))) {
    stop("`bandwidths` must be NULL or a vector of positive numbers", call. = FALSE)
  }
  sets <- .with_seed(seed, {
    pair <- .centre_pair(.subsample_rows(x, max_cells), .subsample_rows(y, max_cells))
    if (is.null(bandwidths)) {
      pooled <- .subsample_rows(rbind(pair$x, pair$y), 1000L)
      median_distance <- stats::median(stats::dist(pooled))
      # All pooled cells identical: any bandwidth gives MMD 0.
      if (median_distance <= 0) median_distance <- 1
      bandwidths <- median_distance * c(0.5, 1, 2)
    }
    pair
  })
  dxx <- .sq_dist(sets$x, sets$x)
  dyy <- .sq_dist(sets$y, sets$y)
  dxy <- .sq_dist(sets$x, sets$y)
  n <- nrow(dxx)
  m <- nrow(dyy)
  values <- vapply(bandwidths, function(bandwidth) {
    kxx <- exp(-dxx / (2 * bandwidth^2))
    kyy <- exp(-dyy / (2 * bandwidth^2))
    kxy <- exp(-dxy / (2 * bandwidth^2))
    if (unbiased) {
      (sum(kxx) - sum(diag(kxx))) / (n * (n - 1)) + (sum(kyy) - sum(diag(kyy))) / (m * (m - 1)) -
        2 * mean(kxy)
    } else {
      max(mean(kxx) + mean(kyy) - 2 * mean(kxy), 0)
    }
  }, numeric(1))
  mean(values)
}

#' Energy distance
#'
#' The energy distance (Szekely and Rizzo) between the rows of `x` and `y`,
#' `2 E||X - Y|| - E||X - X'|| - E||Y - Y'||`, estimated with means over all
#' pairs (V-statistic: never negative, 0 for identical sets). This is the
#' squared form, without the `n m / (n + m)` factor of the test statistic;
#' for two point masses `a` and `b` it is `2 ||a - b||`. Each set is first
#' subsampled to at most `max_cells` rows (seeded).
#'
#' @inheritParams mmd_rbf
#' @return One non-negative number.
#' @examples
#' set.seed(1)
#' energy_distance(matrix(rnorm(200), ncol = 2), matrix(rnorm(200, 2), ncol = 2))
#' @export
energy_distance <- function(x, y, max_cells = 2000, seed = 1) {
  x <- .check_points(x, "x", min_rows = 1L)
  y <- .check_points(y, "y", min_rows = 1L)
  .check_same_dims(x, y, "x", "y")
  max_cells <- .check_count(max_cells, "max_cells", min = 2)
  seed <- .check_count(seed, "seed", min = 0)
  sets <- .with_seed(seed, .centre_pair(.subsample_rows(x, max_cells),
                                        .subsample_rows(y, max_cells)))
  value <- 2 * mean(sqrt(.sq_dist(sets$x, sets$y))) - mean(sqrt(.sq_dist(sets$x, sets$x))) -
    mean(sqrt(.sq_dist(sets$y, sets$y)))
  max(value, 0)
}

# W_p^p between two 1-D empirical distributions, exact for unequal sizes: the
# quantile functions are step functions, constant between the merged
# breakpoints i/n and j/m, so the integral of |F^-1 - G^-1|^p is a finite sum.
.wasserstein_1d_power <- function(a, b, p) {
  a <- sort(a)
  b <- sort(b)
  n <- length(a)
  m <- length(b)
  if (n == m) return(mean(abs(a - b)^p))
  breaks <- sort(unique(c(seq_len(n) / n, seq_len(m) / m)))
  width <- diff(c(0, breaks))
  middle <- breaks - width / 2
  ia <- pmin(pmax(ceiling(middle * n), 1), n)
  ib <- pmin(pmax(ceiling(middle * m), 1), m)
  sum(width * abs(a[ia] - b[ib])^p)
}

#' Sliced Wasserstein distance
#'
#' The p-Wasserstein distance between the empirical distributions of the rows
#' of `x` and `y`. In one dimension it is exact (sorted quantile functions;
#' sets of different sizes are compared through their step quantile functions
#' on the merged grid of breakpoints, which is also exact). In more
#' dimensions it is the sliced distance: the points are projected on
#' `n_projections` random unit directions (seeded), and the result is
#' `(mean over directions of W_p^p)^(1/p)`.
#'
#' @inheritParams mmd_rbf
#' @param p Order (>= 1).
#' @param n_projections Number of random directions (ignored in 1-D).
#' @return One non-negative number.
#' @examples
#' x <- rnorm(500)
#' wasserstein_distance(x, x + 2)   # exactly 2
#' wasserstein_distance(matrix(rnorm(1000), ncol = 2), matrix(rnorm(1000, 1), ncol = 2), p = 2)
#' @export
wasserstein_distance <- function(x, y, p = 1, n_projections = 200, seed = 1) {
  x <- .check_points(x, "x", min_rows = 1L)
  y <- .check_points(y, "y", min_rows = 1L)
  .check_same_dims(x, y, "x", "y")
  p <- .check_number(p, "p", lower = 1)
  n_projections <- .check_count(n_projections, "n_projections", min = 1)
  seed <- .check_count(seed, "seed", min = 0)
  if (ncol(x) == 1L) return(.wasserstein_1d_power(x[, 1], y[, 1], p)^(1 / p))
  directions <- .with_seed(seed, matrix(stats::rnorm(ncol(x) * n_projections), ncol(x)))
  directions <- directions / rep(sqrt(colSums(directions^2)), each = nrow(directions))
  powers <- numeric(n_projections)
  # Projections in chunks so that large sets do not hold all of them at once.
  for (chunk in split(seq_len(n_projections), ceiling(seq_len(n_projections) / 50))) {
    px <- x %*% directions[, chunk, drop = FALSE]  # (n, chunk)
    py <- y %*% directions[, chunk, drop = FALSE]  # (m, chunk)
    for (j in seq_along(chunk)) powers[chunk[j]] <- .wasserstein_1d_power(px[, j], py[, j], p)
  }
  mean(powers)^(1 / p)
}

#' Cross-validated kNN classifier AUC: can real and generated cells be told apart?
#'
#' Balances the two sets by subsampling the larger one (and both to at most
#' `max_cells`), labels `x` 0 and `y` 1, and scores each cell out of fold by
#' the fraction of generated cells among its `k` nearest neighbours (FNN
#' kd-tree, Euclidean) in the other folds. The AUC of these scores is 0.5
#' when the sets are indistinguishable and near 1 when they are separable.
#' Cells with exactly the same coordinates are kept in the same fold, so a
#' copied cell is never scored by its own twin (exact copies of `x` in `y`
#' then look indistinguishable, not separable).
#'
#' @inheritParams mmd_rbf
#' @param x Real cells (cells x dimensions).
#' @param y Generated cells (cells x dimensions).
#' @param k Number of neighbours.
#' @param folds Number of cross-validation folds.
#' @return The AUC, a number in \[0, 1\].
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(600), ncol = 3)
#' knn_classifier_auc(x, matrix(rnorm(600), ncol = 3))      # about 0.5
#' knn_classifier_auc(x, matrix(rnorm(600, 2), ncol = 3))   # near 1
#' @export
knn_classifier_auc <- function(x, y, k = 5, folds = 5, seed = 1, max_cells = 2000) {
  k <- .check_count(k, "k", min = 1)
  folds <- .check_count(folds, "folds", min = 2)
  x <- .check_points(x, "x", min_rows = k + 1L)
  y <- .check_points(y, "y", min_rows = k + 1L)
  .check_same_dims(x, y, "x", "y")
  max_cells <- .check_count(max_cells, "max_cells", min = 2)
  seed <- .check_count(seed, "seed", min = 0)
  n <- min(nrow(x), nrow(y), max_cells)
  if (n < folds || 2 * (n - ceiling(n / folds)) < k) {
    stop(sprintf(paste0("too few cells for a %d-fold kNN classifier with k = %d: %d per set after ",
                        "balancing; lower `k` or `folds`"), folds, k, n), call. = FALSE)
  }
  .with_seed(seed, {
    points <- rbind(.subsample_rows(x, n), .subsample_rows(y, n))
    label <- rep(c(0L, 1L), each = n)
    key <- do.call(paste, c(as.data.frame(points), sep = "\r"))
    group <- match(key, unique(key))
    first <- !duplicated(group)
    group_fold <- integer(max(group))
    group_fold[group[first]] <- .stratified_folds(label[first], folds)
    fold <- group_fold[group]
    score <- numeric(2 * n)
    for (f in seq_len(folds)) {
      test <- fold == f
      if (!any(test)) next
      train <- !test
      kk <- min(k, sum(train))
      neighbours <- FNN::get.knnx(points[train, , drop = FALSE], points[test, , drop = FALSE],
                                  k = kk)$nn.index
      score[test] <- rowMeans(matrix(label[train][neighbours], ncol = kk))
    }
    .auc(score, label)
  })
}

#' Precision, recall, density and coverage of generated cells
#'
#' The manifold metrics of Naeem et al. (2020, ICML), with precision and
#' recall as defined by Kynkaanniemi et al. (2019, NeurIPS). Each real cell
#' gets a ball whose radius is the distance to its `k`-th nearest real
#' neighbour (each generated cell likewise among generated cells):
#' * precision: fraction of generated cells inside at least one real ball;
#' * recall: fraction of real cells inside at least one generated ball;
#' * density: mean number of real balls containing a generated cell, divided
#'   by `k` (about 1 for matching distributions; can exceed 1);
#' * coverage: fraction of real cells whose ball contains at least one
#'   generated cell.
#' Each set is first subsampled to at most `max_cells` rows and, with
#' `balance = TRUE`, the larger set to the size of the smaller (seeded): the
#' radii shrink as a set grows, so the four numbers are only comparable
#' between equally large sets. Distances are computed in blocks, never all
#' at once.
#'
#' @inheritParams mmd_rbf
#' @param real Real cells (cells x dimensions).
#' @param generated Generated cells (cells x dimensions).
#' @param k Neighbour defining the radii; each set needs more than `k` cells.
#' @param balance Subsample the larger set to the size of the smaller.
#' @return A named numeric vector: `precision`, `recall`, `density`,
#'   `coverage`.
#' @examples
#' set.seed(1)
#' real <- matrix(rnorm(1000), ncol = 2)
#' precision_recall_density_coverage(real, matrix(rnorm(1000), ncol = 2))
#' @export
precision_recall_density_coverage <- function(real, generated, k = 5, max_cells = 2000, seed = 1,
                                              balance = TRUE) {
  k <- .check_count(k, "k", min = 1)
  real <- .check_points(real, "real", min_rows = k + 1L)
  generated <- .check_points(generated, "generated", min_rows = k + 1L)
  .check_same_dims(real, generated, "real", "generated")
  max_cells <- .check_count(max_cells, "max_cells", min = k + 1)
  seed <- .check_count(seed, "seed", min = 0)
  .check_flag(balance, "balance")
  n_real <- min(nrow(real), max_cells)
  n_generated <- min(nrow(generated), max_cells)
  if (balance) n_real <- n_generated <- min(n_real, n_generated)
  sets <- .with_seed(seed, .centre_pair(.subsample_rows(real, n_real),
                                        .subsample_rows(generated, n_generated)))
  real <- sets$x
  generated <- sets$y
  real_radius2 <- FNN::get.knn(real, k = k)$nn.dist[, k]^2
  generated_radius2 <- FNN::get.knn(generated, k = k)$nn.dist[, k]^2
  # Slack for the rounding of the BLAS distance formula (points on a ball's edge
  # and exact copies must count as inside).
  tolerance <- 1e-10 * max(1, rowSums(real^2), rowSums(generated^2))
  in_real_balls <- .ball_counts(generated, real, real_radius2 + tolerance)
  in_generated_balls <- .ball_counts(real, generated, generated_radius2 + tolerance)
  nearest2 <- FNN::get.knnx(generated, real, k = 1)$nn.dist[, 1]^2
  c(precision = mean(in_real_balls > 0), recall = mean(in_generated_balls > 0),
    density = mean(in_real_balls) / k, coverage = mean(nearest2 <= real_radius2 + tolerance))
}

# For each row of `query`: how many balls (centres, squared radii) contain it.
.ball_counts <- function(query, centres, radius2) {
  block <- max(1L, floor(4e6 / nrow(centres)))
  counts <- numeric(nrow(query))
  for (start in seq(1L, nrow(query), by = block)) {
    rows <- start:min(nrow(query), start + block - 1L)
    d2 <- .sq_dist(query[rows, , drop = FALSE], centres)  # (block, centres)
    counts[rows] <- rowSums(d2 <= rep(radius2, each = length(rows)))
  }
  counts
}

# ---------------------------------------------------------------------------
# Gene-level agreement on counts
# ---------------------------------------------------------------------------

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
#' @param assay For a SingleCellExperiment: the assay of counts.
#' @return A data.frame with columns `statistic` (`"mean"`, `"variance"`,
#'   `"zero_fraction"`), `method` (`"pearson"`, `"spearman"`) and `value`.
#' @examples
#' sce <- example_pbmc()
#' gene_statistics_agreement(sce[, 1:600], sce[, 601:1200])
#' @export
gene_statistics_agreement <- function(real, generated, scale_factor = 1e4, assay = "counts") {
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
library_size_distance <- function(real, generated, assay = "counts") {
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
                                        assay = "counts") {
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

# ---------------------------------------------------------------------------
# Condition accuracy
# ---------------------------------------------------------------------------

#' Do generated cells look like the condition they were generated for?
#'
#' A kNN classifier (majority vote of the `k` nearest real cells, Euclidean;
#' ties go to the label with the nearer neighbours) trained on the labelled
#' REAL cells predicts the label of each generated cell; the result is the
#' fraction predicted as the condition the cell was generated for. Use the
#' embeddings of an [evaluation_space()].
#'
#' @param real_embedding Real cells (cells x dimensions).
#' @param real_labels One label per real cell.
#' @param generated_embedding Generated cells (cells x dimensions).
#' @param generated_labels The condition each generated cell was generated
#'   for; every label must occur among `real_labels`.
#' @param k Number of neighbours; `real_embedding` needs at least `k` cells.
#' @return The accuracy (a number in \[0, 1\]) with attributes `per_label`
#'   (accuracy per generated label) and `n_per_label` (generated cells per
#'   label), both named numeric vectors.
#' @examples
#' set.seed(1)
#' real <- rbind(matrix(rnorm(200), ncol = 2), matrix(rnorm(200, 5), ncol = 2))
#' labels <- rep(c("a", "b"), each = 100)
#' condition_accuracy(real, labels, real + rnorm(400, sd = 0.1), labels)
#' @export
condition_accuracy <- function(real_embedding, real_labels, generated_embedding, generated_labels,
                               k = 15) {
  k <- .check_count(k, "k", min = 1)
  real_embedding <- .check_points(real_embedding, "real_embedding", min_rows = k)
  generated_embedding <- .check_points(generated_embedding, "generated_embedding", min_rows = 1L)
  .check_same_dims(real_embedding, generated_embedding, "real_embedding", "generated_embedding")
  real_labels <- .check_labels(real_labels, nrow(real_embedding), "real_labels", "real_embedding")
  generated_labels <- .check_labels(generated_labels, nrow(generated_embedding),
                                    "generated_labels", "generated_embedding")
  unseen <- setdiff(generated_labels, real_labels)
  if (length(unseen)) {
    stop(sprintf("`generated_labels` has %d labels absent from `real_labels` (%s)", length(unseen),
                 .first_few(unseen)), call. = FALSE)
  }
  predicted <- .knn_vote(real_embedding, real_labels, generated_embedding, k)
  correct <- predicted == generated_labels
  label_factor <- factor(generated_labels)
  per_label <- tapply(correct, label_factor, mean)
  structure(mean(correct), per_label = stats::setNames(as.numeric(per_label), names(per_label)),
            n_per_label = stats::setNames(as.numeric(table(label_factor)), levels(label_factor)))
}

# ---------------------------------------------------------------------------
# One call for generated cells
# ---------------------------------------------------------------------------

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
#' averaged over the two halves. `space_fit = "all"` fits one space on all
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
#' @param assay For a SingleCellExperiment: the assay of counts.
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
#' \donttest{
#' sce <- example_pbmc()
#' half <- seq(1, 1200, by = 2)
#' generation_metrics(sce[, half], sce[, -half], condition = "cell_type",
#'                    n_genes = 500, n_pcs = 10)
#' }
#' @export
generation_metrics <- function(real, generated, condition = NULL, space = NULL, k = 5, seed = 1,
                               max_cells = 2000, assay = "counts", n_genes = 2000, n_pcs = 30,
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
  higher_is_better <- c("precision", "recall", "density", "coverage", "condition_accuracy",
                        paste(genes$statistic, genes$method, sep = "_"))
  data.frame(metric = names(values), value = unname(values),
             lower_is_better = !names(values) %in% higher_is_better, stringsAsFactors = FALSE)
}

# The metrics computed in an evaluation space, on equally many real and
# generated cells (each subsampled to the smaller size and `max_cells`).
.embedding_generation_metrics <- function(real, real_labels, generated, generated_labels, settings) {
  n <- min(nrow(real), nrow(generated), settings$max_cells)
  picked <- .with_seed(settings$seed, list(
    real = if (nrow(real) > n) sort(sample.int(nrow(real), n)) else seq_len(nrow(real)),
    generated = if (nrow(generated) > n) sort(sample.int(nrow(generated), n)) else
      seq_len(nrow(generated))))
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
    values["condition_accuracy"] <- as.numeric(condition_accuracy(
      real, real_labels[picked$real], generated, generated_labels[picked$generated],
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

# ---------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------

#' Adjusted Rand index and normalised mutual information of two partitions
#'
#' `adjusted_rand_index()` is the Hubert-Arabie ARI computed from the
#' contingency table (1 for identical partitions, about 0 for independent
#' ones; two identical trivial partitions give 1).
#' `normalized_mutual_information()` is the mutual information divided by
#' the arithmetic mean of the two entropies, `2 I(a, b) / (H(a) + H(b))`
#' (natural logarithms; 1 for identical partitions, 0 for independent ones;
#' two single-cluster partitions give 1).
#'
#' @param a,b Cluster labels of the same cells (vectors or factors of equal
#'   length, at least 2, no `NA`).
#' @return One number.
#' @examples
#' a <- rep(1:3, each = 10)
#' adjusted_rand_index(a, a)
#' normalized_mutual_information(a, rev(a))
#' @export
adjusted_rand_index <- function(a, b) {
  table <- .contingency(a, b)
  pairs <- function(n) sum(n * (n - 1) / 2)
  n <- sum(table)
  index <- pairs(table)
  a_pairs <- pairs(rowSums(table))
  b_pairs <- pairs(colSums(table))
  expected <- a_pairs * b_pairs / (n * (n - 1) / 2)
  maximum <- (a_pairs + b_pairs) / 2
  # Equal only when both partitions are one cluster or both all singletons.
  if (maximum == expected) return(1)
  (index - expected) / (maximum - expected)
}

#' @rdname adjusted_rand_index
#' @export
normalized_mutual_information <- function(a, b) {
  table <- .contingency(a, b)
  p <- table / sum(table)
  pa <- rowSums(p)
  pb <- colSums(p)
  entropy <- function(q) -sum(q[q > 0] * log(q[q > 0]))
  nonzero <- p > 0
  mutual <- sum(p[nonzero] * log(p[nonzero] / outer(pa, pb)[nonzero]))
  denominator <- (entropy(pa) + entropy(pb)) / 2
  if (denominator == 0) return(1)
  min(max(mutual / denominator, 0), 1)
}

.contingency <- function(a, b) {
  for (arg in c("a", "b")) {
    value <- get(arg)
    if (is.null(value) || (!is.atomic(value) && !is.factor(value)) || is.list(value)) {
      stop(sprintf("`%s` must be a vector of cluster labels", arg), call. = FALSE)
    }
    if (anyNA(value)) {
      stop(sprintf("`%s` has %d missing (NA) labels", arg, sum(is.na(value))), call. = FALSE)
    }
  }
  if (length(a) != length(b)) {
    stop(sprintf("`a` and `b` must have the same length; got %d and %d", length(a), length(b)),
         call. = FALSE)
  }
  if (length(a) < 2L) stop("`a` and `b` need at least 2 labels", call. = FALSE)
  unclass(table(as.character(a), as.character(b)))
}

#' How well an embedding separates known labels
#'
#' Metrics of a cell embedding against known labels (e.g. cell types):
#' * `knn_accuracy`: cross-validated kNN label transfer (`folds` folds,
#'   stratified by label, seeded; majority vote of the `k` nearest training
#'   cells) - the fraction of cells given their own label;
#' * `knn_balanced_accuracy`: the same, averaged over labels (rare labels
#'   count as much as common ones);
#' * `silhouette`: mean silhouette width of the labels
#'   ([cluster::silhouette()] on Euclidean distances of a seeded subsample of
#'   at most `max_cells` cells);
#' * `kmeans_ari`, `kmeans_nmi`: [adjusted_rand_index()] and
#'   [normalized_mutual_information()] between the labels and a k-means
#'   clustering with as many centres as labels (`nstart = 10`, seeded).
#' Higher is better for all of them.
#'
#' @param embedding Cells x dimensions matrix.
#' @param labels One label per cell (at least 2 distinct labels).
#' @param k Number of neighbours.
#' @param seed Seed of the folds, the subsample and k-means.
#' @param folds Number of cross-validation folds.
#' @param max_cells Largest number of cells in the silhouette computation.
#' @return A data.frame with columns `metric`, `value` and `lower_is_better`
#'   (all `FALSE`).
#' @examples
#' sce <- example_pbmc()
#' space <- evaluation_space(sce, n_genes = 500, n_pcs = 10)
#' embedding_metrics(project_cells(space, sce), sce$cell_type)
#' @export
embedding_metrics <- function(embedding, labels, k = 15, seed = 1, folds = 5, max_cells = 3000) {
  k <- .check_count(k, "k", min = 1)
  folds <- .check_count(folds, "folds", min = 2)
  seed <- .check_count(seed, "seed", min = 0)
  max_cells <- .check_count(max_cells, "max_cells", min = 3)
  embedding <- .check_points(embedding, "embedding", min_rows = max(k + 1L, folds))
  labels <- .check_labels(labels, nrow(embedding), "labels", "embedding")
  n_labels <- length(unique(labels))
  if (n_labels < 2L) stop("`labels` must have at least 2 distinct labels", call. = FALSE)
  .with_seed(seed, {
    fold <- .stratified_folds(labels, folds)
    predicted <- character(length(labels))
    for (f in seq_len(folds)) {
      test <- fold == f
      if (!any(test)) next
      predicted[test] <- .knn_vote(embedding[!test, , drop = FALSE], labels[!test],
                                   embedding[test, , drop = FALSE], k)
    }
    correct <- predicted == labels
    sample_rows <- if (nrow(embedding) > max_cells) sort(sample.int(nrow(embedding), max_cells)) else
      seq_len(nrow(embedding))
    sample_labels <- labels[sample_rows]
    silhouette <- if (length(unique(sample_labels)) < 2L) NA_real_ else {
      widths <- cluster::silhouette(as.integer(factor(sample_labels)),
                                    stats::dist(embedding[sample_rows, , drop = FALSE]))
      mean(widths[, "sil_width"])
    }
    distinct_points <- nrow(unique(embedding))
    clusters <- if (distinct_points < n_labels) NULL else
      stats::kmeans(embedding, centers = n_labels, nstart = 10, iter.max = 100)$cluster
    data.frame(metric = c("knn_accuracy", "knn_balanced_accuracy", "silhouette", "kmeans_ari",
                          "kmeans_nmi"),
               value = c(mean(correct), mean(tapply(correct, labels, mean)), silhouette,
                         if (is.null(clusters)) NA_real_ else adjusted_rand_index(labels, clusters),
                         if (is.null(clusters)) NA_real_ else
                           normalized_mutual_information(labels, clusters)),
               lower_is_better = FALSE, stringsAsFactors = FALSE)
  })
}

# ---------------------------------------------------------------------------
# Reconstruction
# ---------------------------------------------------------------------------

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
#' @param assay For a SingleCellExperiment: the assay of counts.
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
reconstruction_metrics <- function(observed, reconstructed, scale_factor = 1e4, assay = "counts") {
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
  rows <- list()
  for (scale in c("log", "counts")) {
    for (axis in c("cell", "gene")) {
      r <- if (axis == "cell") cell_r[[scale]] else .row_correlations(genes[[scale]])
      kept <- r[!is.na(r)]
      prefix <- sprintf("%s_pearson_%s", axis, scale)
      rows[[length(rows) + 1L]] <- data.frame(
        metric = paste0(prefix, c("_median", "_mean", "_dropped")),
        value = c(if (length(kept)) stats::median(kept) else NA_real_,
                  if (length(kept)) mean(kept) else NA_real_, sum(is.na(r))),
        lower_is_better = c(FALSE, FALSE, NA), stringsAsFactors = FALSE)
    }
  }
  do.call(rbind, rows)
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
