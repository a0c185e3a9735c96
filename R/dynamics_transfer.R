# Dynamics, observed cells: moved to another time (transfer_cells) or
# followed through several (simulate_trajectories) along a dynamics model's
# velocity field.

#' Move observed cells through time with a dynamics model
#'
#' `simulate_trajectories()` follows each observed cell along the velocity
#' field of a [fit_dynamics_model()] model and returns where it is at each of
#' `times`: the path of gene expression over time, and the path on the
#' model's principal components. `transfer_cells()` with a dynamics model
#' moves each cell to one time ("what would these 12 h cells look like at
#' 72 h?").
#'
#' Each cell starts at its own time (`from`) and moves forward to later times
#' and backward to earlier ones, by Heun steps of the model's field. Only the
#' cell's principal components move; what the cell has outside them (its own
#' gene-level detail) is kept, and values are clipped at the data's floor (0
#' for log-normalised counts), as [generate_cells()] does. A cell asked for at
#' its own time is returned as it is. Beyond the last observed time the field
#' is read at that time, and cells move the forecast's damped span (see
#' `forecast` in [fit_dynamics_model()]; by default chosen by a backtest).
#'
#' @param model An `exprflow_dynamics_model` ([fit_dynamics_model()]).
#' @param x Observed cells: a SingleCellExperiment, a Seurat object or a
#'   matrix (genes x cells, gene names as rownames), holding every gene of the
#'   model; counts, or log expression for a model fitted with
#'   `values = "log"`.
#' @param times Times to report each cell's position at (numbers, any order;
#'   the result keeps that order).
#' @param from Each cell's own time: a colData column name, or one number per
#'   cell (or one for all). `NULL` reads the column the model was fitted with
#'   (when it was fitted with a column name).
#' @param condition For a model fitted with `condition`: the course each cell
#'   moves along, one of the model's levels (every cell) or one per cell.
#'   `NULL` reads the model's condition column from `x` (when it was fitted
#'   with a column name). Another level than the cell's own asks how the
#'   cell would move on that course.
#' @param assay As in [fit_dynamics_model()].
#' @param steps Heun steps per unit of the model's time scale (the observed
#'   range).
#' @param to For `transfer_cells()`: the time to move the cells to, one number
#'   (every cell) or one per cell, or a data.frame with a column `time` (or the
#'   model's time column) and one row or one per cell; for a model with
#'   conditions it may also hold the model's condition column (the course to
#'   move along, as `condition`).
#' @param ... Unused (an error names any argument given here).
#' @return `simulate_trajectories()`: a SingleCellExperiment over the model's
#'   genes with one column per cell and time (cells vary fastest within each
#'   time: all cells at `times[1]`, then all at `times[2]`, ...), assay
#'   `logcounts`, colData `cell` (the cell's name in `x`), `time` and
#'   `start_time` (and the course, under the model's condition column or
#'   `condition`, for a model with conditions), and reducedDim `"PCA"` (the position on the model's
#'   principal components). `transfer_cells()`: a SingleCellExperiment with
#'   the cells of `x` (same names), assay `logcounts`, colData `time` (the new
#'   one) and `transferred_from` (the cell's own).
#' @seealso [fit_dynamics_model()], [plot_time_course()]
#' @examples
#' set.seed(1)
#' time <- rep(c(0, 12, 24), each = 60)
#' values <- matrix(rnorm(20 * 180), 20, 180) + outer(seq(0, 2, length.out = 20), time / 12)
#' rownames(values) <- paste0("gene", 1:20)
#' model <- fit_dynamics_model(values, time, values = "log", n_pcs = 5, steps = 100)
#' start <- values[, time == 0][, 1:10]
#' paths <- simulate_trajectories(model, start, times = c(0, 6, 12, 18, 24), from = 0)
#' # gene20 rises by about 1 every 12 h
#' tapply(SummarizedExperiment::assay(paths, "logcounts")["gene20", ], paths$time, mean)
#' later <- transfer_cells(model, start, to = data.frame(time = 24), from = 0)
#' mean(SummarizedExperiment::assay(later, "logcounts")["gene20", ])  # about 4
#' @export
simulate_trajectories <- function(model, x, times, from = NULL, condition = NULL, assay = NULL, steps = 50) {
  .check_dynamics_model(model, "simulate_trajectories")
  if (!is.numeric(times) || !length(times) || any(!is.finite(times))) {
    stop("`times` must be one or more finite numbers", call. = FALSE)
  }
  steps <- .check_count(steps, "steps")
  start <- .dynamics_start(model, x, assay, from, condition)
  n <- ncol(start$values)
  path <- array(0, c(length(model$genes), n, length(times)))  # genes x cells x times
  for (group in split(seq_len(n), paste(start$time, start$course))) {
    path[, group, ] <- .cell_paths(model, start$values[, group, drop = FALSE], start$time[group[1]], times, steps,
                                   start$course[group[1]])
  }
  values <- matrix(path, length(model$genes), dimnames = list(model$genes, NULL))
  column <- data.frame(cell = factor(rep(start$cells, length(times)), levels = unique(start$cells)),
                       time = rep(times, each = n), start_time = rep(start$time, length(times)))
  if (!is.null(model$conditions)) {
    column[[.condition_column(model)]] <- rep(model$conditions$levels[start$course], length(times))
  }
  colnames(values) <- sprintf("%s@%s", column$cell, format(column$time, trim = TRUE))
  scores <- crossprod(values - model$pca$centre, model$pca$rotation)  # (cells x times) x pcs
  colnames(scores) <- paste0("PC", seq_len(ncol(scores)))
  SingleCellExperiment::SingleCellExperiment(
    list(logcounts = values), colData = S4Vectors::DataFrame(column, row.names = colnames(values)),
    reducedDims = list(PCA = scores),
    metadata = list(exprflow = list(architecture = "dynamics_model", steps = steps, values = model$values)))
}

#' @rdname simulate_trajectories
#' @export
transfer_cells.exprflow_dynamics_model <- function(model, x, to, from = NULL, condition = NULL, assay = NULL,
                                                   steps = 50, ...) {
  .reject_unknown_arguments(list(...), "transfer_cells")
  .check_dynamics_model(model, "transfer_cells")
  steps <- .check_count(steps, "steps")
  column <- .condition_column(model)
  if (is.data.frame(to) && !is.null(model$conditions) && column %in% colnames(to)) {
    # The course to move along, given with the time (as other models take `to`).
    if (!is.null(condition)) stop(sprintf("give the course in `condition` or in `to$%s`, not both", column), call. = FALSE)
    condition <- to[[column]]
    to <- to[setdiff(colnames(to), column)]
  }
  start <- .dynamics_start(model, x, assay, from, condition)
  n <- ncol(start$values)
  target <- .transfer_times(model, to, n)
  out <- start$values
  for (cells in split(seq_len(n), paste(start$time, target, start$course))) {
    t0 <- start$time[cells[1]]
    t1 <- target[cells[1]]
    if (t0 != t1) {
      out[, cells] <- .move_cells(model, start$values[, cells, drop = FALSE], t0, t1, steps, start$course[cells[1]])
    }
  }
  colnames(out) <- start$cells
  column <- S4Vectors::DataFrame(time = target, transferred_from = start$time, row.names = start$cells)
  if (!is.null(model$conditions)) column[[.condition_column(model)]] <- model$conditions$levels[start$course]
  SingleCellExperiment::SingleCellExperiment(
    list(logcounts = out),
    colData = column,
    metadata = list(exprflow = list(architecture = "dynamics_model", steps = steps, values = model$values)))
}

.check_dynamics_model <- function(model, fun) {
  if (inherits(model, "exprflow_dynamics_baseline")) {
    stop(sprintf("%s() needs a dynamics model (fit_dynamics_model()): a baseline has no velocity field to move cells along",
                 fun), call. = FALSE)
  }
  if (!inherits(model, "exprflow_dynamics_model")) {
    stop(sprintf("`model` must be an exprflow_dynamics_model (fit_dynamics_model()); got %s", class(model)[1]),
         call. = FALSE)
  }
  if (!isTRUE(model$trained)) stop("the model has not been trained yet", call. = FALSE)
}

# The observed cells in the model's space (genes x cells, the model's genes
# in its order), their names, their own times and the course each moves
# along (1-based; 0 for a model without conditions).
.dynamics_start <- function(model, x, assay, from, condition = NULL) {
  parts <- .time_course_values(x, assay, model$values)
  missing <- setdiff(model$genes, rownames(parts$values))
  if (length(missing)) {
    stop(sprintf("`x` lacks %d of the model's %d genes: %s", length(missing), length(model$genes),
                 .first_few(missing)), call. = FALSE)
  }
  n <- ncol(parts$values)
  if (is.null(from)) {
    if (is.null(model$time_column)) {
      stop("give the cells' own time in `from` (a column name or numbers): the model was fitted with times as numbers",
           call. = FALSE)
    }
    from <- model$time_column
  }
  if (is.numeric(from) && length(from) == 1L) from <- rep(from, n)
  list(values = parts$values[model$genes, , drop = FALSE],
       cells = colnames(parts$values) %||% sprintf("cell_%d", seq_len(n)),
       time = .resolve_time(from, parts$covariates, n, "from"),
       course = .requested_courses(model, condition, n, parts$covariates))
}

# The time each of n cells moves to, from `to` (numbers or a data.frame).
.transfer_times <- function(model, to, n) {
  if (is.data.frame(to)) {
    column <- intersect(c("time", model$time_column), colnames(to))
    if (!length(column) || ncol(to) != 1L) {
      stop(sprintf("`to` must have one column, `%s`: the time to move the cells to", model$time_column %||% "time"),
           call. = FALSE)
    }
    to <- to[[column[1]]]
  }
  if (!is.numeric(to) || !length(to) %in% c(1L, n) || any(!is.finite(to))) {
    stop(sprintf("`to` must be one finite time, or one per cell (%d)", n), call. = FALSE)
  }
  rep_len(as.numeric(to), n)
}
