# Baselines every generative model has to beat, fitted on the same training
# cells: independent negative binomials per gene and condition, the same
# joined by a Gaussian copula (baseline_copula.R), and a Gaussian in PCA
# space per condition. All generate counts through the same
# route as the models (library size drawn from the condition's training
# cells), so the comparison measures the model of expression, not plumbing.
# Beside them, the training cells themselves, drawn per condition: not a
# model to beat but what the data scores, the mark a generator approaches.

#' Fit a baseline generative model
#'
#' Four baselines, each fitted on training cells and generating counts per
#' condition level as the package's models do:
#'
#' * `"independent_nb"`: every gene is an independent negative binomial per
#'   condition level. A cell with library size \eqn{L} has mean
#'   \eqn{\mu_g = p_{cg} L}, with \eqn{p_{cg}} the level's pooled share of
#'   gene \eqn{g}, and a per-gene, per-level dispersion estimated by the method
#'   of moments on size-factor-normalised counts. It knows each gene's mean and
#'   variance per level but no gene-gene structure. It has a held-out
#'   likelihood ([baseline_log_likelihood()]).
#' * `"nb_copula"`: the same negative binomials joined by a Gaussian copula
#'   per level, scDesign3's model of gene-gene correlation. Each training
#'   count is mapped to a normal score through its gene's NB distribution
#'   function (the mid-point of its probability step); the correlation of
#'   these scores over the level's cells (at most 2,000, evenly spaced) is
#'   kept as its leading eigenvectors
#'   (at most `n_factors`, and only those whose eigenvalue exceeds
#'   \eqn{(1 + \sqrt{genes / cells})^2}, the largest a correlation of
#'   independent genes reaches with that many cells) plus a diagonal; each
#'   gene's loadings are divided by how much its discreteness attenuates its
#'   scores (a gene with few distinct counts correlates less on scores than
#'   the Gaussian behind it). A new
#'   cell draws correlated normal scores and maps each through its gene's NB
#'   quantile function, so every gene keeps the independent-NB marginal.
#'   A level with few cells gets few factors or none (then it is the
#'   independent-NB baseline). Measured with [compare_models()] on held-out
#'   cells (stratified 25%, seeds 1-3, means; `inst/scripts/compare_latent.R`),
#'   against `"independent_nb"`: on PBMC3k (2,000 HVGs) RBF MMD 0.0089
#'   against 0.0102, energy distance 0.329 against 0.365, kNN AUC 0.650
#'   against 0.734, gene-gene correlation distance 0.068 against 0.073; on
#'   the control cells of Kang 2018 (986 cells, cell types transferred from
#'   PBMC3k) 0.0064 against 0.0108, 0.237 against 0.297, 0.601 against
#'   0.741; on the example data 0.0078 against 0.0084, 0.304 against 0.307,
#'   0.611 against 0.640. It loses condition accuracy on PBMC3k (0.837
#'   against 0.901) and the example data (0.815 against 0.878), and ties it
#'   on Kang (0.869): correlated draws also spread a type's cells towards
#'   its neighbours, across the boundaries the labels were clustered along.
#' * `"pca_gaussian"`: log-normalised expression (`log1p(count / L * 1e4)`)
#'   is centred and projected on its first `n_pcs` principal components; each
#'   level gets a multivariate Gaussian over the scores. Samples are mapped
#'   back to genes, clipped at 0, and turned into counts for a library size
#'   drawn from the level's training cells by stochastic rounding of the
#'   expected counts (the Gaussian already models the spread of observed,
#'   log-normalised counts, so drawing counts again around them would add
#'   that noise twice). Its PCA is also the embedding baseline
#'   ([embed_cells()]).
#' * `"training_cells"`: not a model but the reference every generator is
#'   read against. It "generates" by drawing real training cells of the
#'   level (without replacement while the level has enough cells, then with),
#'   each with its own counts and library size. Scored against held-out
#'   cells, it gives what the data itself scores on each metric: the floor of
#'   MMD, energy distance and kNN AUC (about 0.5) that a generator can
#'   approach but not pass, and the condition accuracy of real cells (a
#'   generator can exceed it by drawing only typical cells). Measured with
#'   [compare_models()] on held-out cells (stratified 25%, seeds 1-3,
#'   means): on PBMC3k (2,000 HVGs) RBF MMD 0.0015, energy distance 0.072,
#'   kNN AUC 0.477, condition accuracy 0.877; on the example data 0.0026 /
#'   0.123 / 0.477 / 0.828. It keeps the training counts, so it is as large
#'   as they are.
#'
#' Cells without counts (a subset of genes can leave some) are left out of
#' the fits but stay in the library sizes drawn per level, so a baseline
#' generates empty cells as often as its training data has them, as the
#' package's models do; `"training_cells"` keeps them as they are. A level
#' whose cells all lack counts is an error.
#'
#' @param x Training cells: a SingleCellExperiment, Seurat object or count
#'   matrix (genes x cells).
#' @param type `"independent_nb"`, `"nb_copula"`, `"pca_gaussian"` or
#'   `"training_cells"`.
#' @param condition `NULL` (one level), a colData column name, or one label
#'   per cell.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @param n_pcs Principal components of `"pca_gaussian"` (an error for the
#'   other types).
#' @param n_factors The most correlation factors per level of `"nb_copula"`
#'   (an error for the other types).
#' @return An object of class `exprflow_baseline`, usable with
#'   [generate_cells()], [embed_cells()] (`"pca_gaussian"`) and
#'   [baseline_log_likelihood()] (`"independent_nb"`).
#' @examples
#' sce <- example_pbmc()
#' nb <- fit_baseline(sce, "independent_nb", condition = "cell_type")
#' generate_cells(nb, condition = c(B = 5, NK = 5))
#' @export
fit_baseline <- function(x, type = c("independent_nb", "nb_copula", "pca_gaussian", "training_cells"),
                         condition = NULL,
                         assay = NULL, n_pcs = 30, n_factors = 50) {
  type <- match.arg(type)
  # Each is one type's setting: given for another, it would be ignored.
  not_for <- function(setting, owner) {
    stop(sprintf("`%s` is a setting of type = \"%s\", not of \"%s\"", setting, owner, type), call. = FALSE)
  }
  if (!missing(n_pcs) && type != "pca_gaussian") not_for("n_pcs", "pca_gaussian")
  if (!missing(n_factors) && type != "nb_copula") not_for("n_factors", "nb_copula")
  parts <- .counts_and_covariates(x, assay)
  counts <- parts$counts
  .check_gene_names(rownames(counts), "x")
  if (ncol(counts) < 2L) stop("`x` needs at least two cells", call. = FALSE)
  counts <- .as_counts_matrix(counts, "x")
  labels <- .resolve_condition(condition, parts$covariates, ncol(counts))
  column <- if (is.character(condition) && length(condition) == 1L) condition else "condition"
  if (is.null(labels)) {
    labels <- factor(rep("all", ncol(counts)))
    column <- NULL
  }
  library_size <- Matrix::colSums(counts)
  level_names <- levels(labels)
  # One class per type (its methods fit, draw, embed and describe it), under
  # the common exprflow_baseline.
  model <- structure(list(type = type, genes = rownames(counts), condition = column,
                          levels = if (is.null(column)) character(0) else level_names,
                          level_counts = stats::setNames(as.numeric(table(labels)), level_names),
                          library_sizes = split(unname(library_size), labels), trained = TRUE),
                     class = c(paste0("exprflow_", type), "exprflow_baseline"))
  fitted <- .cells_to_fit(model, library_size)
  no_counts <- setdiff(level_names, as.character(labels[fitted]))
  if (length(no_counts)) {
    stop(sprintf("level(s) %s of `condition` have no cell with counts", .first_few(no_counts)), call. = FALSE)
  }
  .fit_baseline_parameters(model, counts[, fitted, drop = FALSE], labels[fitted], library_size[fitted],
                           n_pcs = n_pcs, n_factors = n_factors)
}

# Which training cells the type's parameters are fitted on (logical, per
# cell). Cells without counts (a gene subset can leave some) say nothing
# about expression. They stay in the library-size pools, so a baseline
# generates empty cells as often as its training data has them, as the
# package's models do (they draw library sizes from every training cell).
.cells_to_fit <- function(model, library_size) UseMethod(".cells_to_fit")
.cells_to_fit.default <- function(model, library_size) library_size > 0
# The training cells reference keeps every cell: it is the data as it is.
.cells_to_fit.exprflow_training_cells <- function(model, library_size) rep(TRUE, length(library_size))

# The type's parameters, per condition level, added to `model`.
.fit_baseline_parameters <- function(model, counts, labels, library_size, ...) {
  UseMethod(".fit_baseline_parameters")
}

.fit_baseline_parameters.exprflow_independent_nb <- function(model, counts, labels, library_size, ...) {
  level_names <- levels(labels)
  model$share <- vapply(level_names, function(l) {
    in_level <- labels == l
    Matrix::rowSums(counts[, in_level, drop = FALSE]) / sum(library_size[in_level])
  }, numeric(nrow(counts)))                                                    # genes x levels
  model$theta <- vapply(level_names, function(l) {
    .nb_theta_moments(counts[, labels == l, drop = FALSE])
  }, numeric(nrow(counts)))                                                    # genes x levels
  model
}

.fit_baseline_parameters.exprflow_training_cells <- function(model, counts, labels, library_size, ...) {
  model$counts <- counts                                                       # genes x cells
  model$cells <- split(seq_len(ncol(counts)), labels)                          # per level: columns of counts
  model
}

.fit_baseline_parameters.exprflow_pca_gaussian <- function(model, counts, labels, library_size, n_pcs, ...) {
  .check_count(n_pcs, "n_pcs")
  level_names <- levels(labels)
  logged <- .dense_log_normalise(counts)                                       # genes x cells
  pca <- .fit_pca(logged, n_pcs)
  scores <- t(pca$rotation) %*% (logged - pca$centre)                          # pcs x cells
  model$pca <- pca
  model$gaussians <- lapply(stats::setNames(level_names, level_names), function(l) {
    s <- scores[, labels == l, drop = FALSE]
    covariance <- if (ncol(s) > 1L) stats::cov(t(s)) else diag(0, nrow(s))
    list(mean = rowMeans(s), covariance = covariance)
  })
  model
}

#' @rdname generate_cells
#' @export
generate_cells.exprflow_baseline <- function(model, n = NULL, condition = NULL, seed = NULL, ...) {
  .reject_unknown_arguments(list(...), "generate_cells")
  seed <- .sampling_seed(seed)
  if (is.data.frame(condition)) condition <- .baseline_condition_column(model, condition)
  levels <- .generation_levels(model, n, condition)
  group <- if (length(model$levels)) levels else rep("all", length(levels))
  .with_seed(seed, .draw_baseline_cells(model, levels, group, seed))
}

# A data.frame `condition` of generate_cells() (one row, or one per cell, as
# the models take it): its column of the baseline's one condition.
.baseline_condition_column <- function(model, table) {
  if (!length(model$levels)) stop("the model is unconditional: leave `condition` NULL", call. = FALSE)
  other <- setdiff(names(table), model$condition)
  if (length(other)) {
    stop(sprintf("`condition` has column(s) %s, which are not the baseline's condition ('%s')",
                 .first_few(other), model$condition), call. = FALSE)
  }
  if (!model$condition %in% names(table)) {
    stop(sprintf("`condition` (a data.frame) needs a column '%s' with the baseline's levels", model$condition),
         call. = FALSE)
  }
  table[[model$condition]]
}

# Library sizes of new cells, one per entry of `group` (a level): a random
# training cell's of the level.
.draw_library_sizes <- function(model, group) UseMethod(".draw_library_sizes")
.draw_library_sizes.default <- function(model, group) {
  vapply(group, function(l) {
    pool <- model$library_sizes[[l]]
    pool[sample.int(length(pool), 1L)]
  }, numeric(1), USE.NAMES = FALSE)
}
# Real cells keep their own library sizes, so the training-cells reference
# draws none (NA): drawing them would only spend its random numbers.
.draw_library_sizes.exprflow_training_cells <- function(model, group) rep(NA_real_, length(group))

# Counts and library sizes of new cells, one per entry of `group` (a level).
.draw_baseline_cells <- function(model, levels, group, seed) {
  library_size <- .draw_library_sizes(model, group)
  counts <- matrix(0L, length(model$genes), length(group))
  for (l in unique(group)) {
    cells <- which(group == l)
    counts[, cells] <- .draw_level_counts(model, l, library_size[cells])
  }
  .generated_sce(counts, levels, model$genes, model$condition, model$levels,
                 list(architecture = paste0("baseline:", model$type), seed = seed))
}

# Counts (genes x cells) of new cells of level `level` with these library sizes.
.draw_level_counts <- function(model, level, library_size) UseMethod(".draw_level_counts")

.draw_level_counts.exprflow_independent_nb <- function(model, level, library_size) {
  .draw_nb(outer(model$share[, level], library_size), model$theta[, level])
}

.draw_level_counts.exprflow_training_cells <- function(model, level, library_size) {
  # Real cells keep their own library sizes: `library_size` only counts the cells.
  pool <- model$cells[[level]]
  n <- length(library_size)
  picked <- pool[sample.int(length(pool), n, replace = n > length(pool))]
  counts <- as.matrix(model$counts[, picked, drop = FALSE])
  storage.mode(counts) <- "integer"
  counts
}

.draw_level_counts.exprflow_pca_gaussian <- function(model, level, library_size) {
  gaussian <- model$gaussians[[level]]
  scores <- .draw_gaussian(length(library_size), gaussian$mean, gaussian$covariance)  # pcs x cells
  logged <- pmax(model$pca$rotation %*% scores + model$pca$centre, 0)                  # genes x cells
  # The Gaussian already models the spread of log-normalised observed counts,
  # so counts are only rounded (stochastically, keeping the mean), not drawn
  # again around it.
  expected <- .expected_from_log(logged, library_size)
  floor(expected) + (stats::runif(length(expected)) < expected - floor(expected))
}

#' @rdname embed_cells
#' @export
embed_cells.exprflow_baseline <- function(model, x, assay = NULL, name = "PCA", ...) {
  stop(sprintf("a '%s' baseline has no embedding; use type = \"pca_gaussian\"", model$type), call. = FALSE)
}

#' @rdname embed_cells
#' @export
embed_cells.exprflow_pca_gaussian <- function(model, x, assay = NULL, name = "PCA", ...) {
  .reject_unknown_arguments(list(...), "embed_cells")
  .check_string(name, "name")
  counts <- .align_genes(.counts_and_covariates(x, assay)$counts, model$genes, "x")
  counts <- .as_counts_matrix(counts, "x")
  scores <- t(crossprod(model$pca$rotation, .dense_log_normalise(counts) - model$pca$centre))  # cells x pcs
  dimnames(scores) <- list(colnames(counts), paste0(name, "_", seq_len(ncol(scores))))
  .store_embedding(x, scores, name)
}

#' Held-out log-likelihood under the independent negative binomial baseline
#'
#' @param model An `exprflow_baseline` of type `"independent_nb"`.
#' @param x Cells (SingleCellExperiment, Seurat object or count matrix) holding
#'   the baseline's genes.
#' @param condition As in [fit_baseline()]; for a baseline fitted with a
#'   condition, each cell's level must be one it knows.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @return One log-likelihood (nats) per cell, given its condition and its
#'   observed library size.
#' @examples
#' sce <- example_pbmc()
#' nb <- fit_baseline(sce[, 1:300], "independent_nb", condition = "cell_type")
#' summary(baseline_log_likelihood(nb, sce[, 301:400], condition = "cell_type"))
#' @export
baseline_log_likelihood <- function(model, x, condition = NULL, assay = NULL) {
  if (!inherits(model, "exprflow_independent_nb")) {
    stop("`model` must be an \"independent_nb\" baseline from fit_baseline()", call. = FALSE)
  }
  parts <- .counts_and_covariates(x, assay)
  counts <- .as_counts_matrix(.align_genes(parts$counts, model$genes, "x"), "x")
  labels <- .resolve_condition(condition, parts$covariates, ncol(counts))
  group <- if (length(model$levels)) {
    if (is.null(labels)) stop("the baseline is conditional: give `condition`", call. = FALSE)
    unknown <- setdiff(as.character(labels), model$levels)
    if (length(unknown)) {
      stop(sprintf("unknown condition level(s) %s", .first_few(unknown)), call. = FALSE)
    }
    as.character(labels)
  } else {
    rep("all", ncol(counts))
  }
  library_size <- Matrix::colSums(counts)
  out <- numeric(ncol(counts))
  for (l in unique(group)) {
    cells <- which(group == l)
    mu <- pmax(outer(model$share[, l], library_size[cells]), 1e-6)
    y <- as.matrix(counts[, cells, drop = FALSE])
    out[cells] <- colSums(.nb_log_density(y, mu, model$theta[, l]))
  }
  stats::setNames(out, colnames(counts))
}

#' @export
print.exprflow_baseline <- function(x, ...) {
  cat("<exprflow_baseline> ", x$type, "\n", sep = "")
  cat("  genes      : ", length(x$genes), "\n", sep = "")
  if (length(x$levels)) {
    cat("  condition  : ", x$condition, " (", length(x$levels), " levels)\n", sep = "")
  } else {
    cat("  condition  : none\n")
  }
  if (inherits(x, "exprflow_pca_gaussian")) cat("  components : ", ncol(x$pca$rotation), "\n", sep = "")
  if (inherits(x, "exprflow_training_cells")) cat("  cells      : ", ncol(x$counts), "\n", sep = "")
  if (inherits(x, "exprflow_nb_copula")) {
    factors <- vapply(x$copulas, function(copula) ncol(copula$loadings), integer(1))
    cat("  factors    : ", paste(if (length(x$levels)) paste0(names(factors), " ", factors) else factors,
                                  collapse = ", "), "\n", sep = "")
  }
  invisible(x)
}

# ------------------------------------------------------------------ helpers ---

# Expected counts for log-normalised expression and library sizes: the same
# mapping as the core's (normalised expm1, times the library size).
.expected_from_log <- function(logged, library_size) {
  share <- expm1(logged)
  total <- colSums(share)
  total[total == 0] <- 1
  sweep(share, 2, library_size / total, `*`)
}

# Method-of-moments NB inverse dispersion per gene on size-factor-normalised
# counts, Var = mu E[1/s] + mu^2 / theta; 1e8 (Poisson) without overdispersion.
.nb_theta_moments <- function(counts) {
  size <- Matrix::colSums(counts)
  size <- size / mean(size)
  size[size == 0] <- 1
  scaled <- counts %*% Matrix::Diagonal(x = 1 / size)
  n <- ncol(counts)
  mean_g <- Matrix::rowMeans(scaled)
  if (n < 2L) return(rep(1e8, nrow(counts)))
  var_g <- (Matrix::rowSums(scaled^2) - n * mean_g^2) / (n - 1)
  excess <- var_g - mean_g * mean(1 / size)
  theta <- rep(1e8, nrow(counts))
  over <- mean_g > 0 & excess > 0
  theta[over] <- pmin(pmax(mean_g[over]^2 / excess[over], 1e-3), 1e8)
  theta
}

# `nb(x, size, mu)` elementwise over x and mu (matrices of one shape) with
# one inverse dispersion theta per row; where theta is 1e8 (the moments found
# no overdispersion) `poisson(x, mu)` instead. The NB density, distribution
# and quantile functions below are this with stats' pairs.
.nb_or_poisson <- function(nb, poisson, x, mu, theta) {
  theta <- matrix(theta, nrow(mu), ncol(mu))
  is_poisson <- theta >= 1e8
  out <- nb(x, size = theta, mu = mu)
  out[is_poisson] <- poisson(x[is_poisson], mu[is_poisson])
  out
}

.nb_log_density <- function(y, mu, theta) {
  .nb_or_poisson(function(x, size, mu) stats::dnbinom(x, size = size, mu = mu, log = TRUE),
                 function(x, mu) stats::dpois(x, mu, log = TRUE), y, mu, theta)
}

.draw_nb <- function(mu, theta) {
  theta <- matrix(theta, nrow(mu), ncol(mu))
  out <- matrix(0L, nrow(mu), ncol(mu))
  positive <- mu > 0
  poisson <- positive & theta >= 1e8
  nb <- positive & !poisson
  out[poisson] <- stats::rpois(sum(poisson), mu[poisson])
  out[nb] <- stats::rnbinom(sum(nb), size = theta[nb], mu = mu[nb])
  out
}

.draw_gaussian <- function(n, mean, covariance) {
  # Eigen-decomposition tolerates the singular covariance of a small level.
  e <- eigen(covariance, symmetric = TRUE)
  root <- e$vectors %*% diag(sqrt(pmax(e$values, 0)), length(e$values))
  root %*% matrix(stats::rnorm(length(mean) * n), length(mean), n) + mean
}

# Centred PCA of a genes x cells matrix: the first n_pcs gene loadings.
.fit_pca <- function(logged, n_pcs) {
  centre <- rowMeans(logged)
  n_pcs <- min(n_pcs, nrow(logged) - 1L, ncol(logged) - 1L)
  if (n_pcs < 1L) stop("PCA needs at least two genes and two cells", call. = FALSE)
  centred <- t(logged - centre)                                                # cells x genes
  rotation <- if (n_pcs < min(dim(centred)) / 2) {
    irlba::prcomp_irlba(centred, n = n_pcs, center = FALSE, scale. = FALSE)$rotation
  } else {
    svd(centred, nu = 0, nv = n_pcs)$v
  }
  dimnames(rotation) <- list(rownames(logged), paste0("PC", seq_len(n_pcs)))
  list(centre = centre, rotation = rotation)
}

# log1p(count / library size * 1e4) as a dense genes x cells matrix.
.dense_log_normalise <- function(counts) as.matrix(.log_normalise(counts, 1e4))
