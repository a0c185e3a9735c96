# Dynamics, the model: a population flow (C++ core, src/core/dynamics) that
# moves cells between time points along a velocity field learned from
# optimal-transport chains of the observed populations.

#' Fit a model of how a cell population moves over time
#'
#' Learns a velocity field `v(x, t)` over cells and time from populations
#' observed at a few time points, so that cells can be moved to any time:
#' between observed times (including ones left out of training) and beyond
#' the last (forecast).
#'
#' * Cells are log-normalised (`values = "counts"`) or taken as given
#'   (`values = "log"`) and projected on the first `n_pcs` principal
#'   components of all cells (`encoder = "pca"`, default), or, for counts,
#'   encoded by a count VAE fitted on them (`encoder = "vae"`: the
#'   [fit_expression_model()] `"vae"`, NB likelihood with the observed
#'   library size; each cell is its posterior mean). The field moves these
#'   points; a moved cell keeps what the encoder does not capture (its
#'   values outside the principal components, or outside what the VAE's
#'   decoder gives at its code: the move adds the change of the decoded
#'   log-normalised expression to the cell's own values).
#' * Each training step draws chains of cells through the observed time
#'   points: a cell of the first population, then at each later time a cell
#'   drawn from an entropic optimal-transport coupling (minibatch Sinkhorn) of
#'   the chain's cells with a minibatch of that population.
#' * `path = "hermite"` (default) follows each chain along a cubic Hermite
#'   path whose tangent at each time is the secant between the chain's
#'   neighbouring cells, so the paths bend where the population's course bends
#'   (multi-marginal flow matching, Rohbeck et al. 2024, which uses splines);
#'   a noisy cell bends only its own two segments. `"spline"`: the natural
#'   cubic spline through the chain (it overshoots into long gaps between time
#'   points); `"linear"`: straight segments between consecutive times
#'   (pairwise OT-CFM, Tong et al. 2023).
#' * The field (a residual MLP whose blocks are modulated by an embedding of
#'   time) is regressed on the paths' velocities.
#' * `state = "ssm"` also gives the field the populations' state along the
#'   sequence of time points: each observed population is summarised (the
#'   mean of a small network over its cells) and enters a diagonal
#'   state-space model in continuous time as an impulse at its time; the
#'   state decays exactly between time points (`state_size` modes per
#'   direction, rates from 1 to 30 per observed range), forward from earlier
#'   populations and backward from later ones, so it can be read at any
#'   time, observed or not, and joins the time embedding (per course, see
#'   **Conditions**). Measured (3 seeds,
#'   each interior time point held out in turn, sliced W1): 1.254 against
#'   1.249 for the time alone on the hESC -> endoderm course (optimal
#'   transport 1.281), 2.23 against 2.19 on the MEF days (2.11), so the
#'   default stays `"time"`. With one time course the state is a fixed
#'   function of time, which the time embedding can already learn; it can
#'   carry more where several courses share one field (`condition`).
#'
#' **Conditions.** `condition` names a covariate (e.g. donor, treatment or
#' cell type) whose levels are separate courses observed over time: chains
#' are drawn within each course, and one field is shared by all of them. The
#' field reads which course a cell is on through an embedding of the level
#' and, with `state = "ssm"`, through the state of that course's own
#' populations. A
#' level observed at one time only (e.g. a cell type whose treated cells were
#' never measured) has no path to learn from; its cells are moved by the
#' embedding of no level, which `course_dropout` (20%) of the chains read in
#' training, and by its populations' state, so that the model can be asked
#' how an unobserved course goes on. [generate_cells()], [transfer_cells()]
#' and [simulate_trajectories()] then take the level (`condition =`).
#' Measured on Kang 2018 as courses (each cell type observed before and after
#' IFN-beta, time 0 and 1; each type's stimulated cells held out in turn and
#' predicted from its control cells; `inst/scripts/perturbation_kang_dynamics.R`,
#' seeds 1-3, means over six types, top-100 DEGs): squared Pearson of mean
#' expression 0.936 (DEGs 0.828), response correlation 0.854, energy
#' distance 1.86, where one pooled course (`condition = NULL`) gave 0.852 /
#' 0.724 / 0.731 / 4.44 and the mean shift of the other types 0.906 / 0.722
#' / 0.810 / 2.74; the mean shift weighing the types by how alike their
#' control cells are ([perturbation_shift()] with `reference`) stays ahead on
#' the DEGs (0.843) and energy distance (1.70). `state = "ssm"` did not add
#' to it there (0.933 / 0.819 / 0.847 / 2.05). With `encoder = "vae"` (the
#' same protocol, variant `courses_vae`): 0.934 / 0.841 / 0.844 / 1.73, so
#' the count VAE's latent space does better than the principal components on
#' the DEGs (CD14+ monocytes 0.815 against 0.722) and energy distance, worse
#' on response correlation and the overlap of predicted with real top-100
#' DEGs (0.632 against 0.666), at 3.5 times the fitting time; it comes
#' close to the weighted mean shift without passing it. `latent_dim = 32`
#' in `encoder_settings` gave the same (0.933 / 0.841 / 0.841 / 1.74), as
#' did `training = list(kl_weight = 0.1)` on seed 1, and `"pca"` stays the
#' default.
#'
#' [generate_cells()] with `time =` starts from cells of the latest observed
#' time at or before it (the first one for earlier times), moves them with
#' the field (Heun steps) and adds each start cell's own expression outside
#' the principal components back, so that generated cells keep gene-level
#' detail. [compare_dynamics()] scores the model against the baselines of
#' [fit_dynamics_baseline()] on held-out time points.
#'
#' **Forecasts.** The field is trained inside the observed range only; beyond
#' the last observed time t_n it is read at t_n, and how far cells move
#' there is damped: a cell asked for at t moves as far as the field at t_n
#' carries it in tau (1 - exp(-(t - t_n) / tau)) time units, where tau is the
#' forecast's relaxation time (0: the population stays as observed at t_n;
#' `Inf`: the motion at t_n continues undamped). `forecast = "backtest"`
#' (default) chooses tau on the data: a second field is fitted without the
#' last time point, its population at the time before is moved to t_n under
#' each candidate tau (0, 1/8, 1/4, 1/2, 1, 2 and 4 times that last gap, and
#' `Inf`), and the tau whose cells are nearest the real ones (sliced
#' Wasserstein-1 distance on the principal components) is kept. This doubles
#' the fitting time; with fewer than three time points there is nothing to
#' backtest and the motion continues. Measured (3 seeds): on the hESC ->
#' endoderm course (forecast 96 h from 0-72 h) and on the MEF reprogramming
#' days (day 22 from days 0-5), continuing the last motion is worse than
#' holding at every fraction of the gap tried, in the backtest and in the
#' forecast itself, and the backtest chooses 0 on both: the forecast then
#' equals the last observed population ("use the last time", the nearest
#' baseline), where the undamped motion had sliced W1 1.10 against 0.72
#' (hESC) and 13.5 against 2.4 (MEF).
#'
#' @inheritParams fit_dynamics_baseline
#' @param condition `NULL` (one course), a colData (cell covariate) column
#'   name, or one value per cell: the course (level) each cell is on (see
#'   **Conditions**). At least one level must be observed at two times.
#' @param encoder `"pca"` (default) or `"vae"` (counts only): the space the
#'   field moves cells in (see above).
#' @param encoder_settings For `encoder = "vae"`: settings of the count VAE,
#'   as [fit_expression_model()] takes them (e.g. `list(epochs = 100,
#'   latent_dim = 32)`); it is fitted with the model's `seed`, on every cell.
#' @param path `"hermite"`, `"spline"` or `"linear"` (see above).
#' @param forecast How cells move beyond the last observed time:
#'   `"backtest"` (default: the relaxation time chosen on the data, see
#'   above), `"continue"` (the motion at the last time continues undamped) or
#'   the relaxation time itself (a non-negative number in the units of `time`;
#'   0 holds the last population).
#' @param steps Optimiser steps (`NULL`: 600).
#' @param batch_size Chains per step (`NULL`: 128).
#' @param learning_rate AdamW learning rate (`NULL`: 1e-3), decayed by a
#'   cosine to a tenth.
#' @param seed Seed of the network's initialisation and of the chains.
#' @param verbose Show a progress bar.
#' @param ... Other settings of the field: `hidden` (128), `n_layers` (3),
#'   `dropout` (0), `coupling_epsilon` (0.05: Sinkhorn's regularisation as a
#'   fraction of the mean squared distance), `path_noise` (0: standard
#'   deviation of noise added to path positions, in units of the cells'
#'   overall spread), `weight_decay` (0), `state` (`"time"`, or `"ssm"`: see
#'   above), `state_size` (16), `course_dropout` (0.2, see **Conditions**),
#'   `state_dropout` (0: the chance that a population other than the course's
#'   first is left out of its course's state in a training step, so that the
#'   field learns to move a course whose later populations it has not seen).
#' @return An `exprflow_dynamics_model`.
#' @seealso [compare_dynamics()], [fit_dynamics_baseline()]
#' @examples
#' set.seed(1)
#' time <- rep(c(0, 12, 24), each = 60)
#' values <- matrix(rnorm(20 * 180), 20, 180) + outer(seq(0, 2, length.out = 20), time / 12)
#' rownames(values) <- paste0("gene", 1:20)
#' model <- fit_dynamics_model(values, time, values = "log", n_pcs = 5, steps = 100)
#' cells <- generate_cells(model, n = 50, time = 6, seed = 1)
#' mean(SummarizedExperiment::assay(cells, "logcounts")[20, ])  # about 1
#' @export
fit_dynamics_model <- function(x, time, condition = NULL, assay = NULL, values = c("counts", "log"), n_pcs = 30,
                               encoder = c("pca", "vae"), encoder_settings = list(),
                               path = c("hermite", "spline", "linear"), forecast = "backtest", steps = NULL,
                               batch_size = NULL, learning_rate = NULL, seed = 1, verbose = interactive(), ...) {
  values <- match.arg(values)
  encoder <- match.arg(encoder)
  path <- match.arg(path)
  .check_forecast(forecast)
  .check_count(n_pcs, "n_pcs")
  seed <- .check_count(seed, "seed", min = 0)
  settings <- list(...)
  if (length(settings) && (is.null(names(settings)) || any(!nzchar(names(settings))))) {
    stop("settings in `...` must be named, e.g. hidden = 64", call. = FALSE)
  }
  known <- names(.cpp_dynamics_default_spec())
  unknown <- setdiff(names(settings), known)
  if (length(unknown)) {
    stop(sprintf("unknown setting(s) %s; the dynamics model's settings: %s", .first_few(unknown),
                 paste(setdiff(known, c("path", "steps", "batch_size", "learning_rate", "seed")), collapse = ", ")),
         call. = FALSE)
  }
  if (!is.null(steps)) settings$steps <- .check_count(steps, "steps")
  if (!is.null(batch_size)) settings$batch_size <- .check_count(batch_size, "batch_size")
  if (!is.null(learning_rate)) settings$learning_rate <- .check_positive(learning_rate, "learning_rate")
  settings$path <- path
  settings$seed <- seed
  input <- .time_course_input(x, time, assay, values)
  levels <- .course_levels(condition, input)
  course <- .time_course(input, n_pcs, seed)
  if (encoder == "vae") {
    course$vae <- .fit_dynamics_vae(x, assay, values, encoder_settings, seed, verbose)
  } else if (length(encoder_settings)) {
    stop("`encoder_settings` are the count VAE's (`encoder = \"vae\"`); the PCA encoder takes `n_pcs`", call. = FALSE)
  }
  scores <- .dynamics_encode(course, input$values)  # cells x dims
  progress <- .training_progress(verbose, environment())
  fitted <- .cpp_dynamics_fit(scores, input$time, levels$course - 1L, settings, progress)
  model <- structure(c(course, list(values = values, encoder = encoder, field_dims = ncol(scores),
                                    time_column = if (is.character(time) && length(time) == 1L) time,
                                    raw = fitted$raw, spec = fitted$spec, history = fitted$history,
                                    parameters = fitted$parameters,
                                    trained = !isTRUE(fitted$interrupted) || nrow(fitted$history) > 0)),
                     class = "exprflow_dynamics_model")
  model$conditions <- .course_conditions(levels, input, model$times)
  model$forecast <- if (isTRUE(fitted$interrupted)) {
    list(method = "continue", relaxation = Inf)
  } else {
    .forecast_relaxation(forecast, scores, input$time, levels$course, settings, progress, seed)
  }
  model
}

# The count VAE whose latent space a dynamics model moves cells in
# (`encoder = "vae"`), fitted on the counts of `x` with `settings`.
.fit_dynamics_vae <- function(x, assay, values, settings, seed, verbose) {
  if (values != "counts") {
    stop("`encoder = \"vae\"` needs counts (`values = \"counts\"`): the count VAE is a model of counts", call. = FALSE)
  }
  if (!is.list(settings) || (length(settings) && (is.null(names(settings)) || any(!nzchar(names(settings)))))) {
    stop("`encoder_settings` must be a named list of fit_expression_model() settings, e.g. list(epochs = 50)",
         call. = FALSE)
  }
  reserved <- intersect(names(settings), c("x", "architecture", "assay", "condition", "seed", "verbose"))
  if (length(reserved)) {
    stop(sprintf("`encoder_settings` cannot set %s: the dynamics model sets it", .first_few(reserved)), call. = FALSE)
  }
  do.call(fit_expression_model, c(list(x, "vae", assay = assay, seed = seed, verbose = verbose), settings))
}

# Cells (genes x n values of the model's space) as the points the field
# moves: their principal components, or (encoder "vae") their VAE codes
# (posterior means; the encoder reads log-normalised expression, which
# expm1() of the values gives back exactly). n x dims.
.dynamics_encode <- function(model, cells) {
  if (is.null(model$vae)) return(t(crossprod(model$pca$rotation, cells - model$pca$centre)))
  source <- .cpp_source_from_dense(rownames(cells), expm1(cells))
  .cpp_model_embed(.model_pointer(model$vae), source)
}

# A function of where points that start at `from` (n x dims) have moved to
# (n x dims) giving what that changes in the cells' values (genes x n): the
# move along the principal components, or the change of the VAE decoder's
# log-normalised expression (so that each cell keeps what the decoder does
# not explain, as it keeps what lies outside the principal components).
.dynamics_shifts <- function(model, from) {
  if (is.null(model$vae)) return(function(to) model$pca$rotation %*% t(to - from))
  decode <- function(codes) .cpp_model_decode(.model_pointer(model$vae), codes, list(), list())  # genes x n
  start <- decode(from)
  function(to) decode(to) - start
}

# The number of dimensions the field moves points in (models saved before
# the VAE encoder: their principal components).
.field_dims <- function(model) model$field_dims %||% ncol(model$pca$rotation)

# The course (1-based level index) of each cell from `condition` (NULL: one
# course, integer(0) for the core), the levels in order and the column read.
.course_levels <- function(condition, input) {
  if (is.null(condition)) return(list(levels = NULL, course = integer(0), column = NULL))
  resolved <- .cell_values(condition, input$covariates, length(input$time), "condition")
  condition <- resolved$values
  what <- resolved$what
  if (anyNA(condition)) stop(sprintf("%s has %d missing (NA) values", what, sum(is.na(condition))), call. = FALSE)
  levels <- if (is.factor(condition)) levels(droplevels(condition)) else sort(unique(as.character(condition)))
  course <- match(as.character(condition), levels)
  observed_twice <- vapply(seq_along(levels), function(k) length(unique(input$time[course == k])) >= 2L, logical(1))
  if (!any(observed_twice)) {
    stop(sprintf("no level of %s is observed at two times or more: a course needs two to learn a path from",
                 what), call. = FALSE)
  }
  list(levels = levels, course = course, column = resolved$column)
}

# What a time-course model keeps of its courses (NULL without `condition`):
# the levels, the column they were read from and the level of each cell of
# each observed population (as model$populations).
.course_conditions <- function(levels, input, times) {
  if (is.null(levels$levels)) return(NULL)
  list(levels = levels$levels, column = levels$column,
       of_cells = lapply(times, function(t) levels$course[input$time == t]))
}

# The colData column that names a model's courses in what it returns (and
# in data.frames it is given): the condition column it was fitted with.
.condition_column <- function(model) model$conditions$column %||% "condition"

# The course (1-based) of each of n cells from a `condition` argument of
# generate_cells() / transfer_cells() / simulate_trajectories(): one level,
# one per cell, or (NULL) the model's condition column in the cells'
# `covariates`. 0 for every cell of a model without conditions.
.requested_courses <- function(model, condition, n, covariates = NULL) {
  conditions <- model$conditions
  if (is.null(conditions)) {
    if (!is.null(condition)) stop("the model was fitted without `condition`: leave `condition` NULL", call. = FALSE)
    return(rep(0L, n))
  }
  if (is.null(condition)) {
    if (is.null(conditions$column) || is.null(covariates) || !conditions$column %in% colnames(covariates)) {
      stop(sprintf("give `condition`: one of the model's levels (%s), or one per cell",
                   .first_few(conditions$levels, 10L)), call. = FALSE)
    }
    condition <- covariates[[conditions$column]]
  }
  if (is.data.frame(condition)) {
    # A data.frame as other models take it: the model's condition column.
    column <- .condition_column(model)
    if (!column %in% colnames(condition)) {
      stop(sprintf("`condition` (a data.frame) needs a column '%s' with the model's levels", column), call. = FALSE)
    }
    condition <- condition[[column]]
  }
  if (!is.atomic(condition) || !length(condition) %in% c(1L, n)) {
    stop(sprintf("`condition` must be one level, or one per cell (%d)", n), call. = FALSE)
  }
  condition <- as.character(condition)
  course <- match(condition, conditions$levels)
  if (anyNA(course)) {
    stop(sprintf("`condition` has level(s) the model was not fitted with: %s (the model's: %s)",
                 .first_few(unique(condition[is.na(course)])), .first_few(conditions$levels, 10L)), call. = FALSE)
  }
  rep_len(course, n)
}

# The observed times of course `course` (1-based; 0: a model without
# conditions), and the cells of course `course` in model$populations[[k]].
.course_times <- function(model, course) {
  if (course == 0L) return(model$times)
  model$times[vapply(model$conditions$of_cells, function(of) any(of == course), logical(1))]
}
.course_cells <- function(model, course, k) {
  population <- model$populations[[k]]
  if (course == 0L) population else population[, model$conditions$of_cells[[k]] == course, drop = FALSE]
}

.check_forecast <- function(forecast) {
  ok <- (is.character(forecast) && length(forecast) == 1L && forecast %in% c("backtest", "continue")) ||
    (is.numeric(forecast) && length(forecast) == 1L && !is.na(forecast) && forecast >= 0)
  if (!ok) {
    stop("`forecast` must be \"backtest\", \"continue\" or a relaxation time (a number >= 0, Inf to continue)",
         call. = FALSE)
  }
}

# The forecast's relaxation time: list(method, relaxation, backtest = NULL |
# data.frame(relaxation, wasserstein_1)). `scores`: cells x pcs, as the
# field was fitted on; `courses`: each cell's (1-based) course, or
# integer(0) for one course. With courses, the backtest moves each course
# observed at the last two times along its own course and scores them
# pooled.
.forecast_relaxation <- function(forecast, scores, time, courses, settings, progress, seed) {
  if (is.numeric(forecast)) return(list(method = "given", relaxation = forecast))
  times <- sort(unique(time))
  continue <- list(method = "continue", relaxation = Inf)
  if (forecast == "continue" || length(times) < 3L) return(continue)
  n <- length(times)
  last <- times[n]
  before <- times[n - 1L]
  gap <- last - before
  kept <- time < last
  course <- if (length(courses)) courses else rep(1L, length(time))
  # The courses the backtest can score, and the backtest field's numbering of
  # the courses left without the last time.
  scored <- intersect(course[time == before], course[time == last])
  left <- sort(unique(course[kept]))
  if (!length(scored) || !any(vapply(left, function(k) length(unique(time[kept & course == k])) >= 2L, logical(1)))) {
    return(continue)
  }
  # Reported as its own stage, so that a progress bar says what runs.
  backtest_progress <- function(step, total, loss, stage, epoch, validation_loss) {
    progress(step, total, loss, "the forecast's backtest", epoch, validation_loss)
  }
  backtest_courses <- if (length(courses)) match(course[kept], left) - 1L else integer(0)
  fitted <- .cpp_dynamics_fit(scores[kept, , drop = FALSE], time[kept], backtest_courses, settings, backtest_progress)
  if (isTRUE(fitted$interrupted)) return(continue)
  real <- scores[time == last & course %in% scored, , drop = FALSE]
  candidates <- c(0, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, Inf) * gap
  distance <- vapply(candidates, function(tau) {
    reached <- before + .relaxed_span(gap, tau)
    moved <- do.call(rbind, lapply(scored, function(k) {
      start <- scores[time == before & course == k, , drop = FALSE]
      if (reached == before) return(start)
      path <- .cpp_dynamics_trajectories(fitted$raw, start, c(before, reached), 50L, match(k, left) - 1L)  # pcs x n x 2
      t(matrix(path[, , 2L], ncol(scores)))
    }))
    wasserstein_distance(real, moved, p = 1, n_projections = 100, seed = seed)
  }, numeric(1))
  list(method = "backtest", relaxation = candidates[which.min(distance)],
       backtest = data.frame(relaxation = candidates, wasserstein_1 = distance))
}

# How far (in time units) the field at the last observed time carries a cell
# asked for `beyond` time units past it, with relaxation time `tau`.
.relaxed_span <- function(beyond, tau) {
  if (is.infinite(tau)) return(beyond)
  if (tau == 0) return(0 * beyond)
  tau * (1 - exp(-beyond / tau))
}

# The time the field is integrated to for each of `times`: the time itself
# up to the last observed one, its damped span beyond (models saved before
# the forecast setting continue undamped).
.field_time <- function(model, times) {
  last <- model$times[length(model$times)]
  tau <- if (is.null(model$forecast)) Inf else model$forecast$relaxation
  beyond <- times > last
  times[beyond] <- last + .relaxed_span(times[beyond] - last, tau)
  times
}

#' @export
print.exprflow_dynamics_model <- function(x, ...) {
  cat(sprintf("<exprflow_dynamics_model> population flow, %s paths%s\n", x$spec$path,
              if (identical(x$spec$state, "ssm")) {
                sprintf(", with the populations' state (SSM, %d modes per direction)", as.integer(x$spec$state_size))
              } else ""))
  cat(sprintf("  %d genes (%s values) in %s; %d cells at %d time points: %s\n",
              length(x$genes), if (x$values == "counts") "log-normalised" else "log",
              if (is.null(x$vae)) sprintf("%d principal components", ncol(x$pca$rotation)) else
                sprintf("a count VAE's %d-dimensional latent space", .field_dims(x)),
              sum(x$cells_per_time), length(x$times),
              paste(sprintf("%s (%d)", format(x$times), x$cells_per_time), collapse = ", ")))
  if (!is.null(x$conditions)) {
    cat(sprintf("  %d courses (condition%s): %s\n", length(x$conditions$levels),
                if (is.null(x$conditions$column)) "" else sprintf(" '%s'", x$conditions$column),
                .first_few(x$conditions$levels, 10L)))
  }
  cat(sprintf("  velocity field: %s parameters, %d steps of %d chains\n",
              format(x$parameters, big.mark = ","), as.integer(x$spec$steps), as.integer(x$spec$batch_size)))
  tau <- if (is.null(x$forecast)) Inf else x$forecast$relaxation
  how <- if (is.infinite(tau)) "the last motion continues" else if (tau == 0) "the last population holds" else
    sprintf("motion relaxes in %s time units", format(tau, digits = 3))
  cat(sprintf("  forecast: %s (%s)\n", how, if (is.null(x$forecast)) "continue" else x$forecast$method))
  invisible(x)
}

#' @rdname generate_cells
#' @param steps For a dynamics model: Heun steps per unit of the model's time
#'   scale (the observed range).
#' @details A dynamics model ([fit_dynamics_model()]) fitted with `condition`
#'   takes `condition` as one of its levels (every cell) or one per cell, or
#'   a data.frame with the model's condition column: the course the cells
#'   are generated on, starting from that course's own cells.
#' @export
generate_cells.exprflow_dynamics_model <- function(model, n = NULL, condition = NULL, time = NULL, seed = NULL,
                                                   steps = 50, ...) {
  .reject_unknown_arguments(list(...), "generate_cells")
  steps <- .check_count(steps, "steps")
  plan <- .time_course_request(n, time)
  courses <- .requested_courses(model, condition, length(plan))
  seed <- .sampling_seed(seed)
  out <- matrix(0, length(model$genes), length(plan), dimnames = list(model$genes, NULL))
  .with_seed(seed, for (k in unique(courses)) for (t in unique(plan[courses == k])) {
    cells <- which(plan == t & courses == k)
    # Start at the course's latest observed time at or before t (its first for earlier times).
    own <- .course_times(model, k)
    from <- own[max(1L, findInterval(t, own))]
    population <- .course_cells(model, k, match(from, model$times))
    chosen <- population[, sample.int(ncol(population), length(cells), replace = TRUE), drop = FALSE]
    out[, cells] <- .move_cells(model, chosen, from, t, steps, k)
  })
  colnames(out) <- sprintf("generated_%s_%d", format(seed, scientific = FALSE), seq_along(plan))
  column <- S4Vectors::DataFrame(time = plan, row.names = colnames(out))
  if (!is.null(model$conditions)) column[[.condition_column(model)]] <- model$conditions$levels[courses]
  SingleCellExperiment::SingleCellExperiment(
    list(logcounts = out), colData = column,
    metadata = list(exprflow = list(architecture = "dynamics_model", seed = seed, steps = steps,
                                    values = model$values)))
}

# Cells (genes x n values) of course `course` at time `from` moved to `to`.
.move_cells <- function(model, cells, from, to, steps, course = 0L) {
  matrix(.cell_paths(model, cells, from, to, steps, course), nrow(cells), dimnames = dimnames(cells))
}

# Where cells (genes x n values) of course `course` (1-based; 0 for a model
# without conditions) at time `from` are at each of `times` (any order;
# earlier times are reached backwards along the field): genes x n x times.
# Their principal components move along the field; the rest of each cell
# stays its own, so that cells keep gene-level detail.
.cell_paths <- function(model, cells, from, times, steps, course = 0L) {
  # Beyond the last observed time, cells move the forecast's damped span.
  from <- .field_time(model, from)
  times <- .field_time(model, times)
  scores <- .dynamics_encode(model, cells)  # n x dims
  moved <- array(0, c(ncol(scores), ncol(cells), length(times)))  # dims x n x times
  for (forward in c(TRUE, FALSE)) {
    along <- which(if (forward) times >= from else times < from)
    if (!length(along)) next
    along <- along[order(times[along], decreasing = !forward)]
    path <- .cpp_dynamics_trajectories(model$raw, scores, c(from, times[along]), steps,
                                       max(course - 1L, 0L))  # dims x n x (1 + k)
    moved[, , along] <- path[, , -1L, drop = FALSE]
  }
  out <- array(0, c(nrow(cells), ncol(cells), length(times)), dimnames = list(rownames(cells), colnames(cells), NULL))
  shift <- .dynamics_shifts(model, scores)
  for (k in seq_along(times)) {
    out[, , k] <- pmax(cells + shift(t(matrix(moved[, , k], ncol(scores)))), model$floor)
  }
  out
}

# The times of the cells to generate (one per cell) from `n` and `time`.
.time_course_request <- function(n, time) {
  .check_cell_number(n)
  if (is.null(time) || !is.numeric(time) || !length(time) || any(!is.finite(time))) {
    stop("`time` must be one or more finite numbers: the time of the cells to generate", call. = FALSE)
  }
  if (length(time) == 1L) {
    if (is.null(n)) stop("`n` (the number of cells) is required with one `time`", call. = FALSE)
    return(rep(time, n))
  }
  if (!is.null(n) && n != length(time)) {
    stop(sprintf("`n` (%d) and the %d values of `time` disagree; give one time, or one per cell", n,
                 length(time)), call. = FALSE)
  }
  time
}
