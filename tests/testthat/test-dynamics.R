# Dynamics baselines and the time-course protocol: what each baseline
# generates between and beyond observed time points, the errors that name the
# argument, and the protocol on the real hESC -> endoderm time course.

test_that("optimal transport interpolates a moving bimodal population; a Gaussian fills the gap", {
  toy <- moving_clusters()
  generated <- function(method, time) {
    model <- fit_dynamics_baseline(toy$values, toy$time, method = method, values = "log", n_pcs = 5)
    SummarizedExperiment::assay(generate_cells(model, n = 400, time = time, seed = 2), "logcounts") - 10
  }
  ot <- generated("optimal_transport", 12)
  gaussian <- generated("gaussian", 12)
  nearest <- generated("nearest", 12)
  # Half-way along x2 for both interpolations; the nearest (earlier, on a tie) time stays at 0.
  expect_equal(mean(ot[2, ]), 2, tolerance = 0.1)
  expect_equal(mean(gaussian[2, ]), 2, tolerance = 0.1)
  expect_equal(mean(nearest[2, ]), 0, tolerance = 0.1)
  # The coupling moves each cluster onto itself: no cells between them. The
  # Gaussian puts many cells in between.
  expect_lt(mean(abs(ot[1, ]) < 1.5), 0.02)
  expect_gt(mean(abs(gaussian[1, ]) < 1.5), 0.15)
  # Half of each paired cell's noise: the spread (0.3) shrinks, at most to
  # that of two independent halves (0.3 / sqrt(2)).
  expect_gt(stats::sd(ot[2, ]), 0.3 / sqrt(2) - 0.03)
  expect_lt(stats::sd(ot[2, ]), 0.3)
  # Beyond the last time: linear extrapolation from the last two, or the last population.
  expect_equal(mean(generated("optimal_transport", 72)[2, ]), 12, tolerance = 0.15)
  expect_equal(mean(generated("gaussian", 72)[2, ]), 12, tolerance = 0.15)
  expect_equal(mean(generated("nearest", 72)[2, ]), 8, tolerance = 0.15)
  # At an observed time, every baseline gives that population.
  expect_equal(mean(generated("optimal_transport", 24)[2, ]), 4, tolerance = 0.1)
})

test_that("dynamics baselines generate reproducibly, one time or one per cell", {
  toy <- moving_clusters()
  model <- fit_dynamics_baseline(toy$values, toy$time, values = "log", n_pcs = 5)
  expect_output(print(model), "optimal_transport.*\n.*10 genes \\(log values\\), 240 cells at 3 time points")
  a <- generate_cells(model, n = 20, time = 30, seed = 3)
  b <- generate_cells(model, n = 20, time = 30, seed = 3)
  expect_s4_class(a, "SingleCellExperiment")
  expect_identical(SummarizedExperiment::assay(a, "logcounts"), SummarizedExperiment::assay(b, "logcounts"))
  expect_identical(a$time, rep(30, 20))
  mixed <- generate_cells(model, time = rep(c(0, 48), each = 5), seed = 3)
  expect_identical(mixed$time, rep(c(0, 48), each = 5))
  expect_identical(S4Vectors::metadata(mixed)$exprflow$architecture, "dynamics_baseline:optimal_transport")
})

test_that("dynamics baselines read counts (log-normalised) and never go below zero", {
  sce <- pbmc_sce()[, 1:300]
  sce$hours <- rep(c(0, 10, 20), each = 100)
  model <- fit_dynamics_baseline(sce, "hours", method = "gaussian", n_pcs = 10)
  cells <- generate_cells(model, n = 50, time = 40, seed = 1)
  values <- SummarizedExperiment::assay(cells, "logcounts")
  expect_identical(rownames(values), rownames(sce))
  expect_gte(min(values), 0)
  expect_gt(max(values), 1)
})

test_that("dynamics baselines name the argument that is wrong", {
  toy <- moving_clusters()
  expect_error(fit_dynamics_baseline(toy$values, rep(0, ncol(toy$values)), values = "log"),
               "`time` has one distinct value")
  expect_error(fit_dynamics_baseline(toy$values, as.character(toy$time), values = "log"),
               "`time` must be numeric")
  expect_error(fit_dynamics_baseline(toy$values, toy$time[-1], values = "log"), "`time` has 239 values for 240 cells")
  expect_error(fit_dynamics_baseline(toy$values, "hours", values = "log"), "`time` column 'hours' does not exist")
  expect_error(fit_dynamics_baseline(toy$values, toy$time, values = "log", n_pcs = 10), "`n_pcs` \\(10\\) must be at most 9")
  expect_error(fit_dynamics_baseline(toy$values, toy$time, values = "log", ot_epsilon = 0), "`ot_epsilon`")
  model <- fit_dynamics_baseline(toy$values, toy$time, method = "nearest", values = "log", n_pcs = 5)
  expect_error(generate_cells(model, n = 5), "`time` must be one or more finite numbers")
  expect_error(generate_cells(model, time = 5), "`n` \\(the number of cells\\) is required")
  expect_error(generate_cells(model, n = 3, time = c(1, 2)), "`n` \\(3\\) and the 2 values of `time` disagree")
  expect_error(generate_cells(model, n = 3, time = 1, condition = "B"), "fitted without `condition`")
  expect_error(generate_cells(model, n = 3, time = 1, guidance = 2), "unknown argument")
})

test_that("compare_dynamics() holds out each interior time point and forecasts the last", {
  toy <- moving_clusters(times = c(0, 24, 48, 72), per_time = 60)
  scores <- compare_dynamics(toy$values, toy$time, values = "log", n_pcs = 5)
  expect_setequal(unique(scores$model), c("nearest", "gaussian", "optimal_transport"))
  expect_setequal(unique(paste(scores$task, scores$time)), c("interpolation 24", "interpolation 48", "forecast 72"))
  expect_setequal(unique(scores$metric), c("wasserstein_1", "wasserstein_2", "energy_distance", "mmd_rbf"))
  expect_true(all(scores$lower_is_better))
  expect_true(all(scores$n_real == 60 & scores$n_train == 180))
  w1 <- function(model, task) scores$value[scores$model == model & scores$task == task & scores$metric == "wasserstein_1"]
  # The populations move linearly: interpolating or extrapolating beats the nearest time point.
  expect_true(all(w1("optimal_transport", "interpolation") < w1("nearest", "interpolation") / 2))
  expect_lt(w1("optimal_transport", "forecast"), w1("nearest", "forecast") / 2)
  only <- compare_dynamics(toy$values, toy$time, baselines = "nearest", held_out = 48, forecast = FALSE,
                           values = "log", n_pcs = 5)
  expect_identical(unique(only$time), 48)
  expect_error(compare_dynamics(toy$values, toy$time, held_out = 0, values = "log"),
               "`held_out` must be interior observed time points: 24, 48")
  expect_error(compare_dynamics(toy$values[, toy$time < 48], toy$time[toy$time < 48], values = "log"),
               "holding one out needs at least three")
})

test_that("fit_dynamics_model() moves a population through a time point it never saw", {
  toy <- moving_clusters()
  held <- toy$time != 24
  fit <- function(seed = 1) {
    fit_dynamics_model(toy$values[, held], toy$time[held], values = "log", n_pcs = 5, steps = 150, batch_size = 32,
                       hidden = 32, n_layers = 1, seed = seed, verbose = FALSE)
  }
  model <- fit()
  expect_s3_class(model, "exprflow_dynamics_model")
  expect_output(print(model), "population flow, hermite paths.*\n.*10 genes \\(log values\\) in 5 principal components")
  expect_identical(model$times, c(0, 48))
  expect_equal(nrow(model$history), 2L)
  cells <- generate_cells(model, n = 200, time = 24, seed = 2)
  values <- SummarizedExperiment::assay(cells, "logcounts") - 10
  # Half-way along x2 (0 -> 8), each cluster moved onto itself (x1 = -3 or 3).
  expect_equal(mean(values[2, ]), 4, tolerance = 0.2)
  expect_lt(mean(abs(values[1, ]) < 1.5), 0.05)
  expect_identical(cells$time, rep(24, 200))
  expect_identical(SummarizedExperiment::assay(generate_cells(model, n = 20, time = 24, seed = 2), "logcounts"),
                   SummarizedExperiment::assay(generate_cells(model, n = 20, time = 24, seed = 2), "logcounts"))
  # The same seed trains the same field (the bytes differ only in the history's timings).
  expect_identical(SummarizedExperiment::assay(generate_cells(fit(), n = 20, time = 24, seed = 2), "logcounts"),
                   SummarizedExperiment::assay(generate_cells(model, n = 20, time = 24, seed = 2), "logcounts"))
  # At an observed time, the cells of that time (nothing to move).
  expect_equal(mean(SummarizedExperiment::assay(generate_cells(model, n = 100, time = 48, seed = 1), "logcounts")[2, ]),
               18, tolerance = 0.05)
  expect_error(fit_dynamics_model(toy$values, toy$time, values = "log", n_pcs = 5, hiden = 3), "unknown setting\\(s\\) 'hiden'")
  expect_error(fit_dynamics_model(toy$values, toy$time, values = "log", n_pcs = 12), "`n_pcs` \\(12\\) must be at most 9")
  expect_error(fit_dynamics_model(toy$values, toy$time, values = "log", path = "cubic"), "'arg' should be one of")
  expect_error(generate_cells(model, n = 5, time = 1, condition = "B"), "fitted without `condition`")
})

test_that("a backtest decides whether a forecast continues the last motion or holds", {
  fit <- function(toy, ...) {
    fit_dynamics_model(toy$values, toy$time, values = "log", n_pcs = 5, steps = 150, batch_size = 32, hidden = 32,
                       n_layers = 1, seed = 1, verbose = FALSE, ...)
  }
  x2_at <- function(model, time) {
    mean(SummarizedExperiment::assay(generate_cells(model, n = 200, time = time, seed = 2), "logcounts")[2, ]) - 10
  }
  # A steady drift (x2 rises 4 per 24 h): moving the 24 h cells to 48 h with a
  # field fitted on 0 and 24 h is best undamped, so the forecast continues.
  steady <- moving_clusters(times = c(0, 24, 48), per_time = 60)
  model <- fit(steady)
  backtest <- model$forecast$backtest
  expect_identical(model$forecast$method, "backtest")
  expect_identical(backtest$relaxation, c(0, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, Inf) * 24)
  expect_identical(model$forecast$relaxation, backtest$relaxation[which.min(backtest$wasserstein_1)])
  expect_gte(model$forecast$relaxation, 48)
  expect_lt(min(backtest$wasserstein_1), backtest$wasserstein_1[1] / 3)  # holding misses by the whole step
  expect_equal(x2_at(model, 72), 12, tolerance = 0.1)
  expect_output(print(model), "forecast: (the last motion continues|motion relaxes in [0-9]+ time units) \\(backtest\\)")
  # A course that stops (x2 0, 4, 4): continuing the first motion overshoots
  # 48 h, so the forecast holds the last population.
  stopping <- moving_clusters(times = c(0, 24, 48), per_time = 60)
  stopping$values[2, stopping$time == 48] <- stopping$values[2, stopping$time == 48] - 4
  held <- fit(stopping)
  expect_identical(held$forecast$relaxation, 0)
  expect_identical(which.min(held$forecast$backtest$wasserstein_1), 1L)
  expect_equal(x2_at(held, 96), 4, tolerance = 0.1)
  expect_output(print(held), "forecast: the last population holds \\(backtest\\)")
  # Given: a relaxation time, or "continue"; with two time points there is nothing to backtest.
  given <- fit(stopping, forecast = 12)
  expect_identical(given$forecast, list(method = "given", relaxation = 12))
  expect_identical(fit(stopping, forecast = "continue")$forecast$relaxation, Inf)
  expect_identical(fit(lapply(steady, function(v) if (is.matrix(v)) v[, steady$time < 48] else v[steady$time < 48]))$forecast,
                   list(method = "continue", relaxation = Inf))
  # The damped span: tau (1 - exp(-beyond / tau)); the field's time beyond the last observed one.
  expect_equal(exprflow:::.relaxed_span(24, 12), 12 * (1 - exp(-2)))
  expect_equal(exprflow:::.field_time(given, c(10, 48, 72)), c(10, 48, 48 + 12 * (1 - exp(-2))))
  for (bad in list(-1, "sometimes", c(1, 2), NA_real_)) {
    expect_error(fit(stopping, forecast = bad), "`forecast` must be \"backtest\", \"continue\" or a relaxation time")
  }
})

test_that("state = \"ssm\" gives the field the populations' state, and it is saved with the model", {
  toy <- moving_clusters()
  held <- toy$time != 24
  model <- fit_dynamics_model(toy$values[, held], toy$time[held], values = "log", n_pcs = 5, steps = 150,
                              batch_size = 32, hidden = 32, n_layers = 1, state = "ssm", state_size = 4, seed = 1,
                              verbose = FALSE)
  expect_output(print(model), "with the populations' state \\(SSM, 4 modes per direction\\)")
  # Half-way along x2 (0 -> 8) at the time it never saw, each cluster onto itself.
  values <- SummarizedExperiment::assay(generate_cells(model, n = 200, time = 24, seed = 2), "logcounts") - 10
  expect_equal(mean(values[2, ]), 4, tolerance = 0.25)
  expect_lt(mean(abs(values[1, ]) < 1.5), 0.05)
  file <- tempfile(fileext = ".rds")
  save_model(model, file)
  again <- load_model(file)
  expect_identical(SummarizedExperiment::assay(generate_cells(again, n = 20, time = 30, seed = 1), "logcounts"),
                   SummarizedExperiment::assay(generate_cells(model, n = 20, time = 30, seed = 1), "logcounts"))
  expect_error(fit_dynamics_model(toy$values, toy$time, values = "log", n_pcs = 5, state = "memory"),
               "state must be \"time\" or \"ssm\"")
})

test_that("encoder = \"vae\" moves counts in a count VAE's latent space, and the VAE is saved with the model", {
  set.seed(3)
  time <- rep(c(0, 1, 2), each = 120)
  rate <- outer(exp(seq(-1, 2, length.out = 40)), rep(1, length(time)))
  rate[1:8, ] <- rate[1:8, ] * rep(exp(1.5 * time), each = 8)  # 8 genes rise 4.5-fold per time unit
  counts <- matrix(rpois(length(rate), rate), nrow(rate), dimnames = list(paste0("g", 1:40), NULL))
  held <- time != 1
  model <- fit_dynamics_model(counts[, held], time[held], encoder = "vae",
                              encoder_settings = list(epochs = 40, latent_dim = 4), n_pcs = 5, steps = 200,
                              batch_size = 64, hidden = 32, n_layers = 1, verbose = FALSE)
  expect_output(print(model), "40 genes \\(log-normalised values\\) in a count VAE's 4-dimensional latent space")
  expect_s3_class(model$vae, "exprflow_model")
  logged <- function(x) log1p(t(t(x) / colSums(x)) * 1e4)
  rising <- function(values) mean(values[1:8, ])
  start <- rising(logged(counts[, time == 0]))
  end <- rising(logged(counts[, time == 2]))
  cells <- generate_cells(model, n = 200, time = 1, seed = 1)
  middle <- rising(SummarizedExperiment::assay(cells, "logcounts"))
  # The time it never saw: the rising genes part of the way, not at either end.
  expect_gt(middle, start + 0.2 * (end - start))
  expect_lt(middle, end - 0.2 * (end - start))
  file <- tempfile(fileext = ".rds")
  save_model(model, file)
  again <- load_model(file)
  expect_identical(SummarizedExperiment::assay(generate_cells(again, n = 20, time = 1.5, seed = 1), "logcounts"),
                   SummarizedExperiment::assay(generate_cells(model, n = 20, time = 1.5, seed = 1), "logcounts"))
  paths <- simulate_trajectories(again, counts[, 1:5], times = c(0, 2), from = 0)
  expect_equal(SummarizedExperiment::assay(paths, "logcounts")[, 1:5], logged(counts[, 1:5]),
               ignore_attr = TRUE, tolerance = 1e-5)  # at their own time, cells are as observed
  # compare_dynamics() gives a count course's models counts, so the VAE encoder can be compared.
  scores <- compare_dynamics(counts, time, baselines = "nearest", forecast = FALSE, n_pcs = 5,
                             models = list(vae = list(encoder = "vae", encoder_settings = list(epochs = 40, latent_dim = 4),
                                                      steps = 200, batch_size = 64, hidden = 32, n_layers = 1)))
  w1 <- function(model) scores$value[scores$model == model & scores$metric == "wasserstein_1"]
  expect_lt(w1("vae"), w1("nearest"))
  expect_error(fit_dynamics_model(logged(counts), time, values = "log", encoder = "vae"),
               "`encoder = \"vae\"` needs counts")
  expect_error(fit_dynamics_model(counts, time, encoder = "vae", encoder_settings = list(10)),
               "`encoder_settings` must be a named list")
  expect_error(fit_dynamics_model(counts, time, encoder = "vae", encoder_settings = list(seed = 2)),
               "`encoder_settings` cannot set 'seed'")
  expect_error(fit_dynamics_model(counts, time, encoder_settings = list(epochs = 2)),
               "`encoder_settings` are the count VAE's")
})

test_that("with `condition`, courses share one field and each follows its own", {
  # "down" observed at 0 and 48 h only.
  sce <- course_cells(up_times = c(0, 24, 48), down_times = c(0, 48), per_time = 60, start_cells = 40)
  fit <- function(..., forecast = "continue") {
    fit_dynamics_model(sce, "hours", ..., values = "log", n_pcs = 5, steps = 300, batch_size = 48, hidden = 32,
                       n_layers = 1, seed = 1, forecast = forecast, verbose = FALSE)
  }
  model <- fit(condition = "course")
  expect_identical(model$conditions$levels, c("down", "start", "up"))
  expect_identical(model$conditions$column, "course")
  expect_output(print(model), "3 courses \\(condition 'course'\\): 'down', 'start', 'up'")
  x2 <- function(cells) mean(SummarizedExperiment::assay(cells, "logcounts")[2, ]) - 10
  # Each course at 24 h from its own 0 h cells: half-way up, and half-way
  # down, where "down" was never observed.
  expect_equal(x2(generate_cells(model, n = 200, time = 24, condition = "up", seed = 1)), 4, tolerance = 0.15)
  expect_equal(x2(generate_cells(model, n = 200, time = 24, condition = "down", seed = 1)), -4, tolerance = 0.15)
  mixed <- generate_cells(model, time = c(24, 24, 48), condition = c("up", "down", "start"), seed = 1)
  expect_identical(mixed$course, c("up", "down", "start"))
  expect_true(all(is.finite(SummarizedExperiment::assay(mixed, "logcounts"))))
  # Without `condition` the two courses are one population that spreads both ways.
  pooled <- SummarizedExperiment::assay(generate_cells(fit(), n = 200, time = 48, seed = 1), "logcounts")[2, ] - 10
  expect_gt(mean(pooled > 4), 0.2)
  expect_gt(mean(pooled < -4), 0.2)
  # Observed cells move along their own course (read from x), or along the one given.
  zero <- sce[, sce$hours == 0 & sce$course != "start"]
  moved <- transfer_cells(model, zero, to = 48)
  expect_identical(moved$course, zero$course)
  shift <- SummarizedExperiment::assay(moved, "logcounts")[2, ] - SummarizedExperiment::assay(zero, "logcounts")[2, ]
  expect_equal(as.vector(tapply(shift, zero$course, mean)[c("down", "up")]), c(-8, 8), tolerance = 0.05)
  as_down <- transfer_cells(model, zero[, zero$course == "up"], to = 24, condition = "down")
  expect_equal(x2(as_down) - x2(zero[, zero$course == "up"]), -4, tolerance = 0.15)
  # The course given in `to` or as a data.frame, as other models take conditions.
  in_to <- transfer_cells(model, zero[, zero$course == "up"], to = data.frame(hours = 24, course = "down"))
  expect_identical(SummarizedExperiment::assay(in_to, "logcounts"), SummarizedExperiment::assay(as_down, "logcounts"))
  expect_error(transfer_cells(model, zero, to = data.frame(hours = 24, course = "down"), condition = "up"), "not both")
  expect_identical(SummarizedExperiment::assay(generate_cells(model, n = 5, time = 24, condition = data.frame(course = "down"),
                                                              seed = 1), "logcounts"),
                   SummarizedExperiment::assay(generate_cells(model, n = 5, time = 24, condition = "down", seed = 1),
                                               "logcounts"))
  expect_error(generate_cells(model, n = 5, time = 24, condition = data.frame(type = "down")), "needs a column 'course'")
  paths <- simulate_trajectories(model, zero[, 1:3], times = c(0, 48))
  expect_identical(paths$course, rep(zero$course[1:3], 2))
  # Saved and loaded with its courses.
  file <- tempfile(fileext = ".rds")
  save_model(model, file)
  again <- load_model(file)
  expect_identical(SummarizedExperiment::assay(generate_cells(again, n = 10, time = 30, condition = "down", seed = 1), "logcounts"),
                   SummarizedExperiment::assay(generate_cells(model, n = 10, time = 30, condition = "down", seed = 1), "logcounts"))
  # A backtest per course (the last time of each course observed at the two last times).
  expect_identical(fit(condition = "course", forecast = "backtest")$forecast$method, "backtest")
  # Errors name the argument.
  expect_error(generate_cells(model, n = 5, time = 1), "give `condition`: one of the model's levels")
  expect_error(generate_cells(model, n = 5, time = 1, condition = "sideways"), "level\\(s\\) the model was not fitted with: 'sideways'")
  expect_error(generate_cells(model, n = 5, time = 1, condition = c("up", "down")), "one level, or one per cell \\(5\\)")
  expect_error(transfer_cells(model, SummarizedExperiment::assay(sce, "logcounts")[, 1:3], to = 10, from = 0), "give `condition`")
  expect_error(fit(condition = "donor"), "`condition` column 'donor' does not exist")
  expect_error(fit(condition = rep("a", 3)), "`condition` has 3 values for 340 cells")
  expect_error(fit(condition = sce$hours), "no level of `condition` is observed at two times")
  expect_error(fit(condition = "course", course_dropout = 1), "course_dropout must be in \\[0, 1\\)")
  expect_error(fit(condition = "course", state = "ssm", state_dropout = 1), "state_dropout must be in \\[0, 1\\)")
})

test_that("with `condition`, baselines fit each course and compare_dynamics() scores the courses", {
  sce <- course_cells(up_times = c(0, 24, 48), down_times = c(0, 24, 48), per_time = 50, start_cells = 30)
  x2 <- function(cells) SummarizedExperiment::assay(cells, "logcounts")[2, ] - 10
  kept <- sce$hours != 24
  gaussian <- fit_dynamics_baseline(sce[, kept], "hours", method = "gaussian", condition = "course", values = "log",
                                    n_pcs = 5)
  expect_equal(mean(x2(generate_cells(gaussian, n = 200, time = 24, condition = "down", seed = 1))), -4,
               tolerance = 0.05)
  cells <- generate_cells(gaussian, time = c(24, 24), condition = c("up", "down"), seed = 1)
  expect_identical(cells$course, c("up", "down"))
  expect_error(generate_cells(gaussian, n = 5, time = 24, condition = "start"),
               "course 'start' is observed at one time only \\(0\\): the gaussian baseline needs two")
  nearest <- fit_dynamics_baseline(sce, "hours", method = "nearest", condition = "course", values = "log", n_pcs = 5)
  expect_equal(mean(x2(generate_cells(nearest, n = 50, time = 40, condition = "start", seed = 1))), 0,
               tolerance = 0.2)
  expect_error(generate_cells(fit_dynamics_baseline(sce, "hours", values = "log", n_pcs = 5), n = 5, time = 24,
                              condition = "up"), "fitted without `condition`")
  # 24 h held out of every course, scored in "up" and "down" (not "start").
  scores <- compare_dynamics(sce, "hours", condition = "course", baselines = c("nearest", "gaussian"),
                             forecast = FALSE, values = "log", n_pcs = 5,
                             models = list(flow = list(steps = 200, batch_size = 48, hidden = 32, n_layers = 1)))
  expect_identical(unique(scores$n_real), 100L)
  w1 <- function(scores, model) scores$value[scores$model == model & scores$metric == "wasserstein_1"]
  pooled <- compare_dynamics(sce, "hours", baselines = "gaussian", forecast = FALSE, values = "log", n_pcs = 5)
  expect_lt(w1(scores, "gaussian"), w1(pooled, "gaussian") / 2)
  expect_lt(w1(scores, "flow"), w1(scores, "nearest") / 2)
  expect_error(compare_dynamics(sce, "hours", models = list(flow = list(condition = "course")), values = "log"),
               "give it to compare_dynamics\\(\\)")
  # No course is observed on both sides of 24 h: nothing to score.
  apart <- sce[, (sce$course == "up" & sce$hours < 48) | (sce$course == "down" & sce$hours > 0)]
  expect_error(compare_dynamics(apart, "hours", condition = "course", baselines = "nearest", forecast = FALSE,
                                values = "log", n_pcs = 5), "nothing to score")
})

test_that("compare_dynamics() scores dynamics models beside the baselines", {
  toy <- moving_clusters(times = c(0, 24, 48), per_time = 50)
  scores <- compare_dynamics(toy$values, toy$time, baselines = "nearest", forecast = FALSE, values = "log", n_pcs = 5,
                             models = list(flow = list(steps = 100, batch_size = 32, hidden = 32, n_layers = 1)))
  expect_setequal(unique(scores$model), c("nearest", "flow"))
  w1 <- function(model) scores$value[scores$model == model & scores$metric == "wasserstein_1"]
  expect_lt(w1("flow"), w1("nearest") / 2)
  expect_error(compare_dynamics(toy$values, toy$time, models = list(list(steps = 5)), values = "log"), "named list")
  expect_error(compare_dynamics(toy$values, toy$time, models = list(nearest = list()), values = "log"),
               "a baseline's name")
})

test_that("plot_time_course() draws real and generated cells per time point", {
  toy <- moving_clusters()
  held <- toy$time != 24
  ot <- fit_dynamics_baseline(toy$values[, held], toy$time[held], values = "log", n_pcs = 5)
  p <- plot_time_course(toy$values, list(ot = generate_cells(ot, n = 80, time = 24, seed = 1)), toy$time,
                        values = "log")
  expect_s3_class(p, "ggplot")
  expect_identical(levels(p$data$source), c("real", "ot"))
  expect_identical(levels(p$data$time), c("0", "24", "48"))
  expect_equal(sum(p$data$source == "ot" & p$data$time == "24"), 80)
  expect_error(plot_time_course(toy$values, list(toy$values), toy$time, values = "log"), "named list")
  expect_error(plot_time_course(toy$values, list(x = pbmc_sce()), toy$time, values = "log"), "generate_cells")
})

test_that("on the hESC -> endoderm time course, interpolation beats the nearest time point", {
  dir <- shared_data_dir("timecourse_scode_tf100")
  source(system.file("scripts", "read_time_course.R", package = "exprflow"), local = TRUE)
  sce <- read_time_course(dir, "chu2016_hESC_to_DE")
  expect_identical(dim(sce), c(100L, 758L))
  scores <- compare_dynamics(sce, "time", values = "log", seed = 1)
  interior <- scores[scores$task == "interpolation" & scores$metric == "wasserstein_1", ]
  expect_setequal(interior$time, c(12, 24, 36, 72))
  mean_w1 <- tapply(interior$value, interior$model, mean)
  expect_lt(mean_w1[["optimal_transport"]], mean_w1[["nearest"]])
  expect_lt(mean_w1[["gaussian"]], mean_w1[["nearest"]])
})
