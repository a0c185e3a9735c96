# Dynamics, baselines: what a model of populations over time has to beat when
# it is asked for a time point it never saw (interpolation) or one after the
# last (forecast). Each baseline keeps the observed populations (expression
# values per time point) and builds the asked-for population from the two
# observed time points around it:
#   nearest            - the cells of the nearer observed time point;
#   gaussian           - a Gaussian whose mean and covariance are interpolated
#                        linearly in time (in a PCA space of the training cells);
#   optimal_transport  - McCann's displacement interpolation: pairs of cells
#                        drawn from an optimal-transport coupling of the two
#                        populations, each moved along its straight segment.
# compare_dynamics() runs the leave-one-time-point-out and forecast protocol
# on any of them with the package's distribution metrics.

#' Baselines for cell populations over time
#'
#' Fits a baseline that generates cells at any time from populations observed
#' at a few time points (a time course), for comparison with dynamics models
#' on held-out time points ([compare_dynamics()]). For a time `t` between two
#' observed times `t_a < t_b`, with `s = (t - t_a) / (t_b - t_a)`:
#' * `"nearest"`: cells drawn (with replacement) from the population of the
#'   nearer observed time (the earlier one on a tie); before the first or after
#'   the last observed time, that end's population ("use the last time point"
#'   as a forecast).
#' * `"gaussian"`: the populations are projected on the first `n_pcs` principal
#'   components of all training cells; a Gaussian with mean
#'   `(1 - s) m_a + s m_b` and covariance `(1 - s) C_a + s C_b` is sampled and
#'   mapped back to genes.
#' * `"optimal_transport"`: an entropic optimal-transport coupling of the two
#'   populations (squared Euclidean cost in the same PCA space, equal mass per
#'   cell, Sinkhorn iterations in the log domain with a small regularisation,
#'   `ot_epsilon` times the median cost, which is close to the exact coupling);
#'   pairs `(i, j)` are drawn from the coupling and each new cell is
#'   `(1 - s) x_i + s y_j` in gene space (displacement interpolation).
#'
#' Outside the observed range, `"gaussian"` and `"optimal_transport"`
#' extrapolate linearly from the two nearest time points (`s < 0` or `s > 1`;
#' an extrapolated covariance is clipped to be positive semi-definite), and
#' `"nearest"` repeats the end population. Where the data has no negative
#' values, generated values are clipped at 0. Values are generated in the space
#' the baseline was fitted in: log-normalised expression
#' (`log1p(count / library size * 1e4)`) for counts, the values as given for
#' `values = "log"`.
#'
#' @param x Cells: a SingleCellExperiment, a Seurat object or a matrix (genes x
#'   cells, gene names as rownames) of counts, or of log expression with
#'   `values = "log"`.
#' @param time A colData (cell covariate) column name, or one number per cell:
#'   when each cell was observed. At least two distinct times.
#' @param method `"optimal_transport"`, `"gaussian"` or `"nearest"`.
#' @param condition `NULL` (one course), a colData (cell covariate) column
#'   name, or one value per cell: the course (level) each cell is on, e.g. a
#'   donor or a treatment observed over time. Each course gets its own
#'   baseline from its own populations (in one PCA space of all cells);
#'   [generate_cells()] then takes the course (`condition =`, one level or
#'   one per cell). A course observed at one time only can be asked of
#'   `"nearest"` alone.
#' @param assay Where the values are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`, or `"logcounts"` with `values = "log"`); for a Seurat
#'   object, the Seurat assay whose counts are read. Matrices ignore it.
#' @param values `"counts"` (library-size normalised and log transformed
#'   first) or `"log"` (already log expression, used as it is).
#' @param n_pcs Principal components of the space in which `"gaussian"`
#'   models the populations and `"optimal_transport"` measures its costs (at
#'   most one less than the number of genes and of cells).
#' @param ot_epsilon Entropic regularisation of `"optimal_transport"`, as a
#'   fraction of the median squared distance between the two populations'
#'   cells (smaller is closer to the exact coupling).
#' @param max_cells Largest number of cells per population in the coupling
#'   (a seeded subsample; the coupling is a dense matrix).
#' @return An `exprflow_dynamics_baseline`: use it with [generate_cells()]
#'   (`time =`).
#' @seealso [compare_dynamics()]
#' @examples
#' # A toy time course: 100 genes whose mean moves with time.
#' set.seed(1)
#' time <- rep(c(0, 12, 24), each = 60)
#' values <- matrix(rnorm(100 * 180), 100, 180) + outer(seq(0, 2, length.out = 100), time / 12)
#' rownames(values) <- paste0("gene", 1:100)
#' ot <- fit_dynamics_baseline(values, time, values = "log", n_pcs = 10)
#' cells <- generate_cells(ot, n = 50, time = 6, seed = 1)
#' mean(SummarizedExperiment::assay(cells, "logcounts")[100, ])  # about 1 (half-way from 0 to 2)
#' @export
fit_dynamics_baseline <- function(x, time, method = c("optimal_transport", "gaussian", "nearest"),
                                  condition = NULL, assay = NULL, values = c("counts", "log"), n_pcs = 30,
                                  ot_epsilon = 0.01, max_cells = 2000) {
  method <- match.arg(method)
  values <- match.arg(values)
  .check_count(n_pcs, "n_pcs")
  ot_epsilon <- .check_positive(ot_epsilon, "ot_epsilon")
  max_cells <- .check_count(max_cells, "max_cells", min = 2)
  input <- .time_course_input(x, time, assay, values)
  levels <- .course_levels(condition, input)
  course <- .time_course(input, n_pcs, seed = 1)
  model <- structure(c(course, list(method = method, values = values, ot_epsilon = ot_epsilon, max_cells = max_cells,
                                    trained = TRUE)),
                     class = c(paste0("exprflow_dynamics_", method), "exprflow_dynamics_baseline"))
  model$conditions <- .course_conditions(levels, input, model$times)
  model
}

# The baseline of one course (1-based; 0: the model itself): its own
# observed times and populations, the PCA of all cells.
.course_baseline <- function(model, course) {
  if (course == 0L) return(model)
  own <- .course_times(model, course)
  if (length(own) < 2L && model$method != "nearest") {
    stop(sprintf("course '%s' is observed at one time only (%s): the %s baseline needs two",
                 model$conditions$levels[course], format(own), model$method), call. = FALSE)
  }
  model$populations <- lapply(match(own, model$times), function(k) .course_cells(model, course, k))
  model$times <- own
  model
}

# What every time-course method keeps: the observed times, the populations
# (genes x cells of each time), a PCA of all cells (`n_pcs` components,
# seeded: the truncated SVD starts from a random vector), the floor of
# generated values and the cells per time. `input`: from .time_course_input().
.time_course <- function(input, n_pcs, seed) {
  times <- sort(unique(input$time))
  if (length(times) < 2L) {
    stop(sprintf("`time` has one distinct value (%s); a time course needs at least two", format(times)),
         call. = FALSE)
  }
  max_pcs <- min(nrow(input$values), ncol(input$values)) - 1L
  if (n_pcs > max_pcs) {
    stop(sprintf("`n_pcs` (%d) must be at most %d: one less than the smaller of the number of genes (%d) and of cells (%d)",
                 n_pcs, max_pcs, nrow(input$values), ncol(input$values)), call. = FALSE)
  }
  populations <- lapply(times, function(t) input$values[, input$time == t, drop = FALSE])
  # Expression never goes below the smallest value the data has where that is
  # 0 (log-normalised counts, log1p values): Gaussian draws, extrapolation and
  # moved cells are clipped there.
  list(genes = rownames(input$values), times = times, populations = populations,
       pca = .with_seed(seed, .fit_pca(input$values, n_pcs)),
       floor = if (min(input$values) >= 0) 0 else -Inf,
       cells_per_time = vapply(populations, ncol, integer(1)))
}

#' @export
print.exprflow_dynamics_baseline <- function(x, ...) {
  cat(sprintf("<exprflow_dynamics_baseline> %s\n", x$method))
  cat(sprintf("  %d genes (%s values), %d cells at %d time points: %s\n", length(x$genes),
              if (x$values == "counts") "log-normalised" else "log", sum(x$cells_per_time), length(x$times),
              paste(sprintf("%s (%d)", format(x$times), x$cells_per_time), collapse = ", ")))
  invisible(x)
}

#' @rdname generate_cells
#' @param time For a dynamics baseline ([fit_dynamics_baseline()]): the time
#'   of the cells to generate, one number (all `n` cells) or one per cell.
#' @export
generate_cells.exprflow_dynamics_baseline <- function(model, n = NULL, condition = NULL, time = NULL,
                                                      seed = NULL, ...) {
  .reject_unknown_arguments(list(...), "generate_cells")
  time <- .time_course_request(n, time)
  courses <- .requested_courses(model, condition, length(time))
  seed <- .sampling_seed(seed)
  out <- matrix(0, length(model$genes), length(time), dimnames = list(model$genes, NULL))
  .with_seed(seed, for (k in unique(courses)) {
    baseline <- .course_baseline(model, k)
    for (t in unique(time[courses == k])) {
      cells <- which(time == t & courses == k)
      out[, cells] <- pmax(.dynamics_population(baseline, t, length(cells)), model$floor)
    }
  })
  colnames(out) <- sprintf("generated_%s_%d", format(seed, scientific = FALSE), seq_along(time))
  column <- S4Vectors::DataFrame(time = time, row.names = colnames(out))
  if (!is.null(model$conditions)) column[[.condition_column(model)]] <- model$conditions$levels[courses]
  SingleCellExperiment::SingleCellExperiment(
    list(logcounts = out), colData = column,
    metadata = list(exprflow = list(architecture = paste0("dynamics_baseline:", model$method), seed = seed,
                                    values = model$values)))
}

# The two observed times around `t` (the nearest two outside the range) and
# the position s of t between them (0 at the first, 1 at the second).
.bracketing_times <- function(times, t) {
  k <- findInterval(t, times, rightmost.closed = TRUE)
  k <- min(max(k, 1L), length(times) - 1L)
  list(a = k, b = k + 1L, s = (t - times[k]) / (times[k + 1L] - times[k]))
}

# `n` new cells (genes x n) at time t.
.dynamics_population <- function(model, t, n) UseMethod(".dynamics_population")

.dynamics_population.exprflow_dynamics_nearest <- function(model, t, n) {
  # Distance to each observed time; ties go to the earlier one.
  source <- model$populations[[which.min(abs(model$times - t))]]
  source[, sample.int(ncol(source), n, replace = TRUE), drop = FALSE]
}

.dynamics_population.exprflow_dynamics_gaussian <- function(model, t, n) {
  around <- .bracketing_times(model$times, t)
  moments <- lapply(model$populations[c(around$a, around$b)], function(cells) {
    scores <- t(model$pca$rotation) %*% (cells - model$pca$centre)  # pcs x cells
    list(mean = rowMeans(scores),
         covariance = if (ncol(scores) > 1L) stats::cov(t(scores)) else diag(0, nrow(scores)))
  })
  s <- around$s
  mean <- (1 - s) * moments[[1]]$mean + s * moments[[2]]$mean
  covariance <- (1 - s) * moments[[1]]$covariance + s * moments[[2]]$covariance  # clipped in .draw_gaussian
  model$pca$rotation %*% .draw_gaussian(n, mean, covariance) + model$pca$centre  # genes x n
}

.dynamics_population.exprflow_dynamics_optimal_transport <- function(model, t, n) {
  around <- .bracketing_times(model$times, t)
  from <- model$populations[[around$a]]
  to <- model$populations[[around$b]]
  from <- from[, sort(sample.int(ncol(from), min(ncol(from), model$max_cells))), drop = FALSE]
  to <- to[, sort(sample.int(ncol(to), min(ncol(to), model$max_cells))), drop = FALSE]
  project <- function(cells) t(crossprod(model$pca$rotation, cells - model$pca$centre))  # cells x pcs
  plan <- .sinkhorn_plan(project(from), project(to), model$ot_epsilon)
  pairs <- sample.int(length(plan), n, replace = TRUE, prob = plan)
  i <- (pairs - 1L) %% nrow(plan) + 1L
  j <- (pairs - 1L) %/% nrow(plan) + 1L
  (1 - around$s) * from[, i, drop = FALSE] + around$s * to[, j, drop = FALSE]
}

# Entropic optimal-transport coupling of two point sets (rows), equal mass per
# point, squared Euclidean cost: Sinkhorn in the log domain (stable for small
# epsilon). Returns the n x m coupling (sums to 1).
.sinkhorn_plan <- function(a, b, epsilon_ratio, iterations = 2000L, tolerance = 1e-6) {
  centred <- .centre_pair(a, b)
  cost <- .sq_dist(centred$x, centred$y)  # (n, m)
  epsilon <- epsilon_ratio * max(stats::median(cost), .Machine$double.eps)
  n <- nrow(cost)
  m <- ncol(cost)
  log_a <- rep(-log(n), n)
  log_b <- rep(-log(m), m)
  f <- numeric(n)
  g <- numeric(m)
  row_lse <- function(z) {
    top <- z[cbind(seq_len(nrow(z)), max.col(z, ties.method = "first"))]
    top + log(rowSums(exp(z - top)))
  }
  for (iteration in seq_len(iterations)) {
    f <- epsilon * (log_a - row_lse((rep(g, each = n) - cost) / epsilon))
    g <- epsilon * (log_b - row_lse(t((f - cost) / epsilon)))
    # g is exact for the columns; the row marginals tell how far from done.
    if (iteration %% 10L == 0L) {
      log_plan <- (f + rep(g, each = n) - cost) / epsilon
      if (max(abs(exp(row_lse(log_plan)) - exp(log_a))) * n < tolerance) break
    }
  }
  plan <- exp((f + rep(g, each = n) - cost) / epsilon)
  plan / sum(plan)
}

# Values (genes x cells, dense), one finite time per cell of a time course
# and the cells' covariates (NULL for a matrix).
.time_course_input <- function(x, time, assay, values) {
  parts <- .time_course_values(x, assay, values)
  if (ncol(parts$values) < 2L) stop("`x` needs at least two cells", call. = FALSE)
  list(values = parts$values, time = .resolve_time(time, parts$covariates, ncol(parts$values)),
       covariates = parts$covariates, counts = parts$counts)
}

# Cells' values (genes x cells, dense doubles) in the space a time-course
# method works in: log-normalised counts (`values = "counts"`) or the values
# as given (`"log"`), with the cells' covariates (NULL for a matrix) and,
# for counts, the counts read (genes x cells, as given; NULL for "log").
.time_course_values <- function(x, assay, values, arg = "x") {
  if (values == "log" && is.null(assay) && methods::is(x, "SummarizedExperiment")) assay <- "logcounts"
  parts <- .counts_and_covariates(x, assay, arg)
  matrix <- parts$counts
  .check_gene_names(rownames(matrix), arg)
  if (!ncol(matrix)) stop(sprintf("`%s` has no cells", arg), call. = FALSE)
  if (values == "counts") {
    counts <- .as_counts_matrix(matrix, arg)
    empty <- sum(Matrix::colSums(counts) <= 0)
    if (empty) stop(sprintf("`%s` has %d cell(s) without counts; remove them first", arg, empty), call. = FALSE)
    logged <- .dense_log_normalise(counts)
  } else {
    counts <- NULL
    logged <- as.matrix(matrix)
    storage.mode(logged) <- "double"
    bad <- sum(!is.finite(logged))
    if (bad) stop(sprintf("`%s` has %d missing (NA) or non-finite values", arg, bad), call. = FALSE)
  }
  list(values = logged, covariates = parts$covariates, counts = counts)
}

# One value per cell from a covariate column name or the values themselves:
# list(values, column (the name read, or NULL), what (how errors name it)).
.cell_values <- function(value, covariates, n_cells, arg) {
  what <- sprintf("`%s`", arg)
  column <- NULL
  if (is.character(value) && length(value) == 1L && (n_cells != 1L || value %in% colnames(covariates))) {
    if (is.null(covariates) || !value %in% colnames(covariates)) {
      stop(sprintf("%s column '%s' does not exist; available columns: %s", what, value,
                   if (is.null(covariates) || !ncol(covariates)) "none" else .first_few(colnames(covariates), 10L)),
           call. = FALSE)
    }
    what <- sprintf("`%s` column '%s'", arg, value)
    column <- value
    value <- covariates[[value]]
  }
  if (length(value) != n_cells) stop(sprintf("%s has %d values for %d cells", what, length(value), n_cells), call. = FALSE)
  list(values = value, column = column, what = what)
}

# One finite number per cell from a covariate column name or the values.
.resolve_time <- function(time, covariates, n_cells, arg = "time") {
  if (is.null(time)) stop(sprintf("`%s` is required: a column name or one number per cell", arg), call. = FALSE)
  resolved <- .cell_values(time, covariates, n_cells, arg)
  time <- resolved$values
  what <- resolved$what
  if (!is.numeric(time)) {
    stop(sprintf(paste0("%s must be numeric (e.g. hours); got %s. Labelled states are not times: ",
                        "convert them to numbers if they are ordered in time"), what, class(time)[1]),
         call. = FALSE)
  }
  if (any(!is.finite(time))) {
    stop(sprintf("%s has %d missing (NA) or non-finite values", what, sum(!is.finite(time))), call. = FALSE)
  }
  as.numeric(time)
}
