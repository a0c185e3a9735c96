# Dynamics, evaluation: the leave-one-time-point-out and forecast protocol.

#' Score dynamics baselines on held-out time points
#'
#' The protocol of a time course: for each held-out time point, every method
#' is fitted on the cells of the OTHER time points and asked for as many cells
#' as were observed at the held-out time; these are compared with the real
#' held-out cells. `held_out` defaults to every interior time point
#' (interpolation); with `forecast = TRUE` the methods are also fitted on the
#' time points before the last and asked for the last.
#'
#' The comparison is made in a PCA space (`n_pcs` components) fitted on the
#' training cells of that split (never on the held-out cells, see
#' [generation_metrics()] on why): sliced [wasserstein_distance()] with p = 1
#' and 2 (`wasserstein_1`, `wasserstein_2`), [energy_distance()] and
#' [mmd_rbf()]; lower is better for all.
#'
#' @inheritParams fit_dynamics_baseline
#' @param baselines Any of `"nearest"`, `"gaussian"`, `"optimal_transport"`
#'   ([fit_dynamics_baseline()]).
#' @param held_out Time points to hold out, one at a time (`NULL`: every time
#'   point but the first and the last).
#' @param forecast Also fit on all but the last time point and predict it.
#' @param n_pcs Components of the evaluation space (and of the baselines).
#' @param seed Seed of generation and of the metrics.
#' @param n_projections Directions of the sliced Wasserstein distances.
#' @return A data.frame with one row per task, time, method and metric:
#'   columns `task` (`"interpolation"` or `"forecast"`), `time`, `model`,
#'   `metric`, `value`, `lower_is_better`, `n_real` (held-out cells) and
#'   `n_train` (training cells).
#' @seealso [fit_dynamics_baseline()]
#' @examples
#' set.seed(1)
#' time <- rep(c(0, 12, 24, 36), each = 50)
#' values <- matrix(rnorm(50 * 200), 50, 200) + outer(seq(0, 2, length.out = 50), time / 12)
#' rownames(values) <- paste0("gene", 1:50)
#' scores <- compare_dynamics(values, time, values = "log", n_pcs = 5)
#' scores[scores$metric == "wasserstein_1", c("task", "time", "model", "value")]
#' @export
compare_dynamics <- function(x, time, baselines = c("nearest", "gaussian", "optimal_transport"), held_out = NULL,
                             forecast = TRUE, assay = NULL, values = c("counts", "log"), n_pcs = 30, seed = 1,
                             n_projections = 200) {
  baselines <- match.arg(baselines, several.ok = TRUE)
  values <- match.arg(values)
  .check_flag(forecast, "forecast")
  .check_count(n_pcs, "n_pcs")
  seed <- .check_count(seed, "seed", min = 0)
  input <- .time_course_input(x, time, assay, values)
  times <- sort(unique(input$time))
  if (length(times) < 3L) {
    stop(sprintf("`time` has %d distinct values; holding one out needs at least three", length(times)),
         call. = FALSE)
  }
  interior <- times[-c(1L, length(times))]
  if (is.null(held_out)) {
    held_out <- interior
  } else {
    if (!is.numeric(held_out) || !length(held_out) || !all(held_out %in% interior)) {
      stop(sprintf("`held_out` must be interior observed time points: %s", paste(format(interior), collapse = ", ")),
           call. = FALSE)
    }
  }
  splits <- c(lapply(held_out, function(t) list(task = "interpolation", time = t, train = input$time != t)),
              if (forecast) list(list(task = "forecast", time = times[length(times)],
                                      train = input$time < times[length(times)])))
  rows <- list()
  for (split in splits) {
    train <- input$values[, split$train, drop = FALSE]
    real <- input$values[, input$time == split$time, drop = FALSE]
    space <- .fit_pca(train, n_pcs)
    project <- function(cells) t(crossprod(space$rotation, cells - space$centre))  # cells x pcs
    real_points <- project(real)
    for (method in baselines) {
      # Fitted on values already transformed: log values from here on.
      model <- fit_dynamics_baseline(train, input$time[split$train], method = method, values = "log",
                                     n_pcs = min(n_pcs, nrow(train) - 1L, ncol(train) - 1L))
      generated <- SummarizedExperiment::assay(generate_cells(model, n = ncol(real), time = split$time, seed = seed),
                                               "logcounts")
      scores <- .population_distances(real_points, project(generated), seed, n_projections)
      rows[[length(rows) + 1L]] <- data.frame(task = split$task, time = split$time, model = method, scores,
                                              n_real = ncol(real), n_train = ncol(train), row.names = NULL)
    }
  }
  do.call(rbind, rows)
}

# Distances between two populations (cells x dimensions) as a metric frame.
.population_distances <- function(real, generated, seed, n_projections) {
  .metric_frame(c(
    wasserstein_1 = wasserstein_distance(real, generated, p = 1, n_projections = n_projections, seed = seed),
    wasserstein_2 = wasserstein_distance(real, generated, p = 2, n_projections = n_projections, seed = seed),
    energy_distance = energy_distance(real, generated, seed = seed),
    mmd_rbf = mmd_rbf(real, generated, seed = seed)))
}
