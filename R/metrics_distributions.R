# Evaluation metrics: distances between two point sets.
# (Metric names and directions: R/metrics_table.R.)

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
#'   the median pairwise Euclidean distance of the cells of `x`, the
#'   reference (from a seeded subsample of at most 1,000 of them), times
#'   `c(0.5, 1, 2)`. So several sets scored against the same real cells, as
#'   [generation_metrics()] and [compare_models()] score models, share one
#'   kernel. Earlier builds took the median of `x` and `y` pooled: each
#'   set then widened its own kernel by its distance from `x`, and a
#'   set far off could score lower than one nearer (in 2 dimensions, unit
#'   Gaussians shifted by 10 and 50 scored 1.18 and 0.99 with the pooled
#'   median, 1.10 and 1.10 with this one; shifted by 2, 0.259 and 0.265).
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
      median_distance <- stats::median(stats::dist(.subsample_rows(pair$x, 1000L)))
      # All reference cells identical (or one): the scale of the pooled cells.
      if (!is.finite(median_distance) || median_distance <= 0) {
        median_distance <- stats::median(stats::dist(.subsample_rows(rbind(pair$x, pair$y), 1000L)))
      }
      # All cells identical: any bandwidth gives MMD 0.
      if (!is.finite(median_distance) || median_distance <= 0) median_distance <- 1
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
