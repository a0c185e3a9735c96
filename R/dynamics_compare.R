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
#' @param models A named list of models to score beside the baselines, each a
#'   list of [fit_dynamics_model()] arguments (e.g.
#'   `list(flow = list(steps = 1000), vae = list(encoder = "vae"))`; `values`
#'   and `n_pcs` are the protocol's; counts are given as counts, so that
#'   `encoder = "vae"` can be compared); generated with [generate_cells()].
#' @param baselines Any of `"nearest"`, `"gaussian"`, `"optimal_transport"`
#'   ([fit_dynamics_baseline()]).
#' @param condition `NULL` (one course), a colData column name or one value
#'   per cell: the course each cell is on (e.g. donors or treatments
#'   observed over time). Every method is fitted with it (the models'
#'   `condition`, the baselines' per-course fits); a held-out time is
#'   held out of every course and scored, pooled, in the courses observed at
#'   it and, in training, on both sides of it (interpolation) or at two
#'   earlier times (forecast); each method generates as many cells of each
#'   scored course as it has real ones.
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
compare_dynamics <- function(x, time, models = list(), baselines = c("nearest", "gaussian", "optimal_transport"),
                             condition = NULL, held_out = NULL,
                             forecast = TRUE, assay = NULL, values = c("counts", "log"), n_pcs = 30, seed = 1,
                             n_projections = 200) {
  baselines <- if (length(baselines)) match.arg(baselines, several.ok = TRUE) else character(0)
  values <- match.arg(values)
  if (!is.list(models) || (length(models) && (is.null(names(models)) || any(!nzchar(names(models))) ||
                                              !all(vapply(models, is.list, logical(1)))))) {
    stop("`models` must be a named list of fit_dynamics_model() argument lists", call. = FALSE)
  }
  if (any(names(models) %in% baselines)) {
    stop(sprintf("`models` names %s, which is a baseline's name", .first_few(intersect(names(models), baselines))),
         call. = FALSE)
  }
  if (!length(models) && !length(baselines)) stop("nothing to compare: give `models` and/or `baselines`", call. = FALSE)
  given <- names(models)[vapply(models, function(spec) "condition" %in% names(spec), logical(1))]
  if (length(given)) {
    stop(sprintf("`models` (%s) give `condition`: give it to compare_dynamics(), which fits every method with it",
                 .first_few(given)), call. = FALSE)
  }
  .check_flag(forecast, "forecast")
  .check_count(n_pcs, "n_pcs")
  seed <- .check_count(seed, "seed", min = 0)
  input <- .time_course_input(x, time, assay, values)
  levels <- .course_levels(condition, input)
  # Each cell's course as a label (one course: NULL, every method fitted without conditions).
  course_of <- if (!is.null(levels$levels)) levels$levels[levels$course]
  # Models are given counts where the course is counts (a count VAE encoder
  # needs them); the baselines their log-normalisation.
  counts <- input$counts  # NULL for log values
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
    # The courses scored at this time: observed at it and, in training,
    # around it (interpolation) or at two earlier times (forecast).
    scored <- .scored_courses(course_of, input$time, split)
    if (!length(scored)) next
    asked <- input$time == split$time
    if (!is.null(course_of)) asked <- asked & course_of %in% scored
    train <- input$values[, split$train, drop = FALSE]
    real <- input$values[, asked, drop = FALSE]
    space <- .with_seed(seed, .fit_pca(train, n_pcs))
    project <- function(cells) t(crossprod(space$rotation, cells - space$centre))  # cells x pcs
    real_points <- project(real)
    pcs <- min(n_pcs, nrow(train) - 1L, ncol(train) - 1L)
    # Fitted on values already transformed: log values from here on.
    fits <- c(lapply(stats::setNames(baselines, baselines), function(method) {
      fit_dynamics_baseline(train, input$time[split$train], method = method, condition = course_of[split$train],
                            values = "log", n_pcs = pcs)
    }), lapply(models, function(spec) {
      # Cells inside the observed range do not depend on the forecast
      # setting: interpolation fits skip its backtest.
      if (split$task == "interpolation" && is.null(spec$forecast)) spec$forecast <- "continue"
      given <- if (is.null(counts)) list(x = train, values = "log") else
        list(x = counts[, split$train, drop = FALSE], values = "counts")
      arguments <- utils::modifyList(spec, c(given, list(time = input$time[split$train], n_pcs = pcs, verbose = FALSE)))
      arguments$condition <- course_of[split$train]  # NULL: one course
      do.call(fit_dynamics_model, arguments)
    }))
    for (name in names(fits)) {
      generated <- SummarizedExperiment::assay(generate_cells(fits[[name]], n = ncol(real), time = split$time,
                                                              condition = course_of[asked], seed = seed), "logcounts")
      scores <- .population_distances(real_points, project(generated), seed, n_projections)
      rows[[length(rows) + 1L]] <- data.frame(task = split$task, time = split$time, model = name, scores,
                                              n_real = ncol(real), n_train = ncol(train), row.names = NULL)
    }
  }
  if (!length(rows)) {
    stop("no course is observed at a held-out time and around it in training: nothing to score", call. = FALSE)
  }
  do.call(rbind, rows)
}

# The courses (labels) a split scores: those observed at its time and, among
# the training cells, before and after it (interpolation) or at two times
# (forecast). One course (`course_of` NULL): TRUE.
.scored_courses <- function(course_of, time, split) {
  if (is.null(course_of)) return(TRUE)
  candidates <- unique(course_of[time == split$time])
  Filter(function(level) {
    seen <- unique(time[split$train & course_of == level])
    if (split$task == "forecast") length(seen) >= 2L else any(seen < split$time) && any(seen > split$time)
  }, candidates)
}

# Distances between two populations (cells x dimensions) as a metric frame.
.population_distances <- function(real, generated, seed, n_projections) {
  .metric_frame(c(
    wasserstein_1 = wasserstein_distance(real, generated, p = 1, n_projections = n_projections, seed = seed),
    wasserstein_2 = wasserstein_distance(real, generated, p = 2, n_projections = n_projections, seed = seed),
    energy_distance = energy_distance(real, generated, seed = seed),
    mmd_rbf = mmd_rbf(real, generated, seed = seed)))
}

#' Real and generated populations over time
#'
#' Draws the cells of a time course on the first two principal components of
#' the real cells' expression (log-normalised counts, or the log values as
#' given), one panel per time point: the real cells observed at that time and
#' the cells generated for it (e.g. by [generate_cells()] with `time =`), so
#' that a held-out or forecast population can be seen against the real one.
#'
#' @inheritParams fit_dynamics_baseline
#' @param real Real cells of the time course (as `x` in
#'   [fit_dynamics_baseline()]).
#' @param generated Generated cells with a colData column `time` and an assay
#'   `logcounts` (what [generate_cells()] returns for a dynamics baseline), or
#'   a named list of them.
#' @param time The real cells' times: a colData column name or one number per
#'   cell.
#' @return A ggplot object.
#' @examples
#' set.seed(1)
#' time <- rep(c(0, 12, 24), each = 60)
#' values <- matrix(rnorm(20 * 180), 20, 180) + outer(seq(0, 2, length.out = 20), time / 12)
#' rownames(values) <- paste0("gene", 1:20)
#' kept <- time != 12
#' nearest <- fit_dynamics_baseline(values[, kept], time[kept], "nearest", values = "log", n_pcs = 5)
#' held_out <- generate_cells(nearest, n = 60, time = 12)
#' plot_time_course(values, list(nearest = held_out), time, values = "log")
#' @export
plot_time_course <- function(real, generated, time = "time", values = c("counts", "log"), assay = NULL) {
  values <- match.arg(values)
  if (!is.list(generated) || methods::is(generated, "SummarizedExperiment")) generated <- list(generated = generated)
  if (is.null(names(generated)) || any(!nzchar(names(generated))) || "real" %in% names(generated)) {
    stop("`generated` must be one set of cells or a named list of them (not named \"real\")", call. = FALSE)
  }
  input <- .time_course_input(real, time, assay, values)
  pca <- .with_seed(1, .fit_pca(input$values, 2L))
  project <- function(cells) t(crossprod(pca$rotation, cells[rownames(pca$rotation), , drop = FALSE] - pca$centre))
  parts <- list(data.frame(project(input$values), time = input$time, source = "real"))
  for (name in names(generated)) {
    cells <- generated[[name]]
    if (!methods::is(cells, "SummarizedExperiment") || !"logcounts" %in% SummarizedExperiment::assayNames(cells) ||
        !is.numeric(cells$time)) {
      stop(sprintf("`generated$%s` must be cells from generate_cells(..., time =): an assay 'logcounts' and a numeric colData column 'time'",
                   name), call. = FALSE)
    }
    missing <- setdiff(rownames(pca$rotation), rownames(cells))
    if (length(missing)) {
      stop(sprintf("`generated$%s` lacks %d gene(s) of `real`: %s", name, length(missing), .first_few(missing)),
           call. = FALSE)
    }
    parts[[length(parts) + 1L]] <- data.frame(project(as.matrix(SummarizedExperiment::assay(cells, "logcounts"))),
                                              time = cells$time, source = name)
  }
  frame <- do.call(rbind, parts)
  frame$source <- factor(frame$source, levels = c("real", names(generated)))
  frame$time <- factor(frame$time, levels = sort(unique(frame$time)))
  # Real cells underneath so generated cells on top of them stay visible.
  frame <- frame[order(frame$source != "real"), ]
  ggplot2::ggplot(frame, ggplot2::aes(x = .data$PC1, y = .data$PC2, colour = .data$source)) +
    ggplot2::geom_point(size = 0.6, alpha = 0.6) +
    ggplot2::facet_wrap(~time, labeller = ggplot2::label_both) +
    ggplot2::labs(x = "PC 1", y = "PC 2", colour = NULL,
                  title = "Real and generated populations per time point (PCA of the real cells)") +
    ggplot2::theme_bw(base_size = 9) +
    ggplot2::guides(colour = ggplot2::guide_legend(override.aes = list(size = 2, alpha = 1)))
}
