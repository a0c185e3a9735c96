# Observed cells moved along a dynamics model's field: transfer_cells() to one
# time, simulate_trajectories() through several, and time-course models saved
# and loaded.

fit_toy_dynamics <- function(toy) {
  sce <- SingleCellExperiment::SingleCellExperiment(list(logcounts = toy$values),
                                                    colData = S4Vectors::DataFrame(hours = toy$time))
  fit_dynamics_model(sce, "hours", values = "log", n_pcs = 5, steps = 150, batch_size = 32, hidden = 32,
                     n_layers = 1, seed = 1, verbose = FALSE)
}

test_that("simulate_trajectories() follows each cell forward and backward along the field", {
  toy <- moving_clusters()
  model <- fit_toy_dynamics(toy)
  start <- toy$values[, toy$time == 24][, 1:40]
  colnames(start) <- paste0("c", 1:40)
  paths <- simulate_trajectories(model, start, times = c(36, 0, 24, 12), from = 24)
  expect_s4_class(paths, "SingleCellExperiment")
  expect_identical(dim(paths), c(10L, 160L))
  expect_identical(paths$time, rep(c(36, 0, 24, 12), each = 40))
  expect_identical(as.character(paths$cell), rep(colnames(start), 4))
  expect_identical(paths$start_time, rep(24, 160))
  expect_identical(colnames(paths)[c(1, 41)], c("c1@36", "c1@0"))
  values <- SummarizedExperiment::assay(paths, "logcounts")
  # At its own time a cell is where it was; x2 moves 4 per 24 h both ways,
  # and each cell stays in its own cluster (x1 keeps its sign).
  expect_equal(values[, paths$time == 24], start, ignore_attr = TRUE)
  by_time <- as.vector(tapply(values[2, ], paths$time, mean)) - 10
  expect_equal(unname(by_time), c(0, 2, 4, 6) + mean(start[2, ]) - 14, tolerance = 0.1)
  own_side <- sign(start[1, ] - 10)
  for (t in c(0, 12, 36)) expect_identical(unname(sign(values[1, paths$time == t] - 10)), unname(own_side))
  pcs <- SingleCellExperiment::reducedDim(paths, "PCA")
  expect_identical(dim(pcs), c(160L, 5L))
  expect_equal(unname(pcs), unname(crossprod(values - model$pca$centre, model$pca$rotation)))
  # Cells starting at different times, one call.
  mixed <- toy$values[, c(1:5, 81:85)]
  both <- simulate_trajectories(model, mixed, times = 48, from = rep(c(0, 24), each = 5))
  moved <- SummarizedExperiment::assay(both, "logcounts")[2, ] - mixed[2, ]
  expect_equal(unname(moved), rep(c(8, 4), each = 5), tolerance = 0.15)
})

test_that("transfer_cells() moves observed cells to another time and back", {
  toy <- moving_clusters()
  model <- fit_toy_dynamics(toy)
  expect_identical(model$time_column, "hours")
  sce <- SingleCellExperiment::SingleCellExperiment(list(logcounts = toy$values[, 1:30]),
                                                    colData = S4Vectors::DataFrame(hours = toy$time[1:30]))
  colnames(sce) <- paste0("cell", 1:30)
  # `from` defaults to the model's time column; `to` as a data.frame.
  later <- transfer_cells(model, sce, to = data.frame(hours = 48))
  expect_identical(colnames(later), colnames(sce))
  expect_identical(later$time, rep(48, 30))
  expect_identical(later$transferred_from, rep(0, 30))
  forward <- SummarizedExperiment::assay(later, "logcounts")
  expect_equal(mean(forward[2, ] - toy$values[2, 1:30]), 8, tolerance = 0.05)
  # Back again: each cell close to where it started (the field is smooth).
  back <- transfer_cells(model, forward, to = 0, from = 48)
  error <- sqrt(colMeans((SummarizedExperiment::assay(back, "logcounts") - toy$values[, 1:30])^2))
  expect_lt(max(error), 0.3)
  # One time per cell; a cell asked for at its own time is left as it is.
  own <- transfer_cells(model, sce[, 1:4], to = data.frame(time = c(0, 12, 24, 0)))
  moved <- SummarizedExperiment::assay(own, "logcounts")
  expect_identical(moved[, c(1, 4)], toy$values[, c(1, 4)], ignore_attr = TRUE)
  expect_gt(moved[2, 3] - toy$values[2, 3], moved[2, 2] - toy$values[2, 2])
})

test_that("transfer_cells() and simulate_trajectories() name what is wrong", {
  toy <- moving_clusters(per_time = 20)
  model <- fit_dynamics_model(toy$values, toy$time, values = "log", n_pcs = 3, steps = 5, hidden = 16,
                              n_layers = 1, verbose = FALSE)
  cells <- toy$values[, 1:3]
  baseline <- fit_dynamics_baseline(toy$values, toy$time, values = "log", n_pcs = 3)
  expect_error(transfer_cells(baseline, cells, to = 10, from = 0), "a baseline has no velocity field")
  expect_error(simulate_trajectories(baseline, cells, times = 10, from = 0), "a baseline has no velocity field")
  expect_error(transfer_cells(model, cells, to = 10), "give the cells' own time in `from`")
  expect_error(transfer_cells(model, cells[-2, ], to = 10, from = 0), "`x` lacks 1 of the model's 10 genes: 'g2'")
  expect_error(transfer_cells(model, cells, to = c(1, 2), from = 0), "one finite time, or one per cell \\(3\\)")
  expect_error(transfer_cells(model, cells, to = data.frame(day = 1), from = 0), "`to` must have one column, `time`")
  expect_error(transfer_cells(model, cells, to = 1, from = c(0, 1)), "`from` has 2 values for 3 cells")
  expect_error(transfer_cells(model, cells, to = 1, from = 0, guidance_scale = 2), "unknown argument: `guidance_scale`")
  expect_error(simulate_trajectories(model, cells, times = NA, from = 0), "`times` must be one or more finite numbers")
  expect_error(simulate_trajectories(list(), cells, times = 1, from = 0), "must be an exprflow_dynamics_model")
})

test_that("time-course models and baselines are saved and loaded", {
  toy <- moving_clusters(per_time = 20)
  model <- fit_dynamics_model(toy$values, toy$time, values = "log", n_pcs = 3, steps = 20, hidden = 16,
                              n_layers = 1, verbose = FALSE)
  path <- tempfile(fileext = ".exprflow")
  on.exit(unlink(path))
  expect_identical(save_model(model, path), model)
  restored <- load_model(path)
  expect_s3_class(restored, "exprflow_dynamics_model")
  expect_identical(SummarizedExperiment::assay(generate_cells(restored, n = 10, time = 12, seed = 3), "logcounts"),
                   SummarizedExperiment::assay(generate_cells(model, n = 10, time = 12, seed = 3), "logcounts"))
  baseline <- fit_dynamics_baseline(toy$values, toy$time, values = "log", n_pcs = 3, method = "gaussian")
  save_model(baseline, path)
  expect_identical(load_model(path), baseline)
  expect_error(save_model(model, path, adapter_only = TRUE), "only a fine-tuned exprflow_model has a LoRA adapter")
  # A damaged field or another R object is refused.
  broken <- model
  broken$raw[length(broken$raw)] <- as.raw(bitwXor(as.integer(broken$raw[length(broken$raw)]), 1L))
  saveRDS(broken, path)
  expect_error(load_model(path), "checksum|damaged|corrupt")
  saveRDS(list(a = 1), path)
  expect_error(load_model(path), "is an R data file, not an exprflow model")
  writeBin(readBin(path, "raw", 10), path)
  expect_error(load_model(path), "damaged or truncated")
})
