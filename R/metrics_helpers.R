# Evaluation metrics: how close generated cells are to real ones (in a PCA
# space fitted on the real cells, and gene by gene), how good an embedding is,
# and how faithful a reconstruction is. Pure R; kNN searches use FNN kd-trees,
# and every all-pairs computation is capped by a seeded subsample so memory
# stays O(max_cells^2) whatever the input size.

# This file: their shared helpers (input checks, per-gene moments, small kernels).

.is_sparse <- function(x) methods::is(x, "sparseMatrix")

# Counts (genes x cells) of a metric input, as a dgCMatrix or a dense double
# matrix, checked to be finite and non-negative. Whole numbers are not
# required: expected counts of a decoder are valid input too.
.metric_input <- function(x, assay = NULL, arg = "x", need_genes = TRUE) {
  parts <- .counts_and_covariates(x, assay, arg)
  list(counts = .validate_counts(parts$counts, arg, need_genes), covariates = parts$covariates)
}

.metric_counts <- function(x, assay = NULL, arg = "x", need_genes = TRUE) {
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

# Majority vote of the k nearest training cells; a tie goes to the label whose
# neighbours rank nearer (each neighbour adds a bonus of (k - rank + 1) /
# (k (k + 1)), under one vote in all), and a tie of those to the first label
# in level order.
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
