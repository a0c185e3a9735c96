# R/io.R: save_model(), load_model(), and models restored with readRDS().

assays_identical <- function(a, b) {
  expect_identical(SummarizedExperiment::assay(a, "counts"), SummarizedExperiment::assay(b, "counts"))
  expect_identical(SummarizedExperiment::assay(a, "logcounts"), SummarizedExperiment::assay(b, "logcounts"))
  expect_identical(SummarizedExperiment::colData(a), SummarizedExperiment::colData(b))
}

# A small throwaway model (never saved unless a test saves it).
fresh_model <- function(...) fit_tiny(pbmc_sce()[, 1:200], condition = "cell_type", ...)

test_that("save_model() / load_model() round-trips the model description", {
  model <- fresh_model()
  path <- withr::local_tempfile(fileext = ".exprflow")
  expect_invisible(returned <- save_model(model, path))
  expect_s3_class(returned, "exprflow_model")
  expect_true(file.exists(path))
  expect_identical(returned$state$path, normalizePath(path))
  restored <- load_model(path)
  expect_s3_class(restored, "exprflow_model")
  for (field in c("architecture", "spec", "genes", "condition", "levels", "level_counts", "history",
                  "parameters", "trained", "device")) {
    expect_identical(restored[[field]], model[[field]], label = field)
  }
  expect_identical(restored$state$path, normalizePath(path))
})

test_that("a loaded model generates the same cells as the original with the same seed", {
  model <- tiny_model()
  path <- withr::local_tempfile(fileext = ".exprflow")
  save_model(model, path)
  restored <- load_model(path)
  original <- generate_cells(model, condition = c(B = 3, NK = 3, DC = 2), steps = 10, seed = 42)
  again <- generate_cells(restored, condition = c(B = 3, NK = 3, DC = 2), steps = 10, seed = 42)
  assays_identical(original, again)
  expect_identical(embed_cells(restored, small_counts(2000, 20)), embed_cells(model, small_counts(2000, 20)))
})

test_that("save_model() remembers the path in the model it was given", {
  model <- fresh_model()
  path <- withr::local_tempfile(fileext = ".exprflow")
  save_model(model, path)  # result deliberately not assigned
  expect_identical(model$state$path, normalizePath(path))
  expect_output(print(model), "file")
})

test_that("readRDS() of a model saved with save_model() reloads transparently", {
  model <- fresh_model()
  path <- withr::local_tempfile(fileext = ".exprflow")
  rds <- withr::local_tempfile(fileext = ".rds")
  model <- save_model(model, path)
  saveRDS(model, rds)
  restored <- readRDS(rds)
  expect_s3_class(restored, "exprflow_model")
  expected <- generate_cells(model, n = 9, steps = 10, seed = 5)
  got <- generate_cells(restored, n = 9, steps = 10, seed = 5)
  assays_identical(expected, got)
  # once reloaded, it stays usable (embedding too)
  expect_identical(embed_cells(restored, small_counts(2000, 10)), embed_cells(model, small_counts(2000, 10)))
})

test_that("readRDS() of a model never saved gives a clear error and R survives", {
  model <- fresh_model()
  rds <- withr::local_tempfile(fileext = ".rds")
  saveRDS(model, rds)
  restored <- readRDS(rds)
  expect_error(generate_cells(restored, n = 3, steps = 5), "never saved with save_model\\(\\)")
  expect_error(generate_cells(restored, n = 3, steps = 5), "load_model\\(\\)")
  expect_error(embed_cells(restored, small_counts(2000, 5)), "save_model")
  expect_error(save_model(restored, withr::local_tempfile(fileext = ".exprflow")), "save_model")
  # R is still alive and the original handle still works
  expect_s4_class(generate_cells(model, n = 2, steps = 5), "SingleCellExperiment")
})

test_that("readRDS() of a saved model whose file is gone gives a clear error", {
  model <- fresh_model()
  path <- withr::local_tempfile(fileext = ".exprflow")
  rds <- withr::local_tempfile(fileext = ".rds")
  saveRDS(save_model(model, path), rds)
  unlink(path)
  expect_error(generate_cells(readRDS(rds), n = 2, steps = 5), "save_model")
})

test_that("load_model() and save_model() check their arguments", {
  expect_error(load_model(file.path(tempdir(), "no-such-model.exprflow")), "does not exist")
  expect_error(load_model(NA_character_), "`path` must be a single")
  expect_error(load_model(c("a", "b")), "`path` must be a single")
  expect_error(save_model(list(), withr::local_tempfile(fileext = ".exprflow")), "must be an exprflow_model")
  expect_error(save_model(tiny_unconditional_model(), 1), "`path` must be a single")
})

test_that("loading a file that is not a model is an error, not a crash", {
  path <- withr::local_tempfile(fileext = ".exprflow")
  writeLines("not a model", path)
  expect_error(load_model(path))
  expect_error(load_model(tempdir()))
})

test_that("saving into a missing directory is an error", {
  expect_error(save_model(tiny_unconditional_model(), file.path(tempdir(), "no", "such", "dir", "m.exprflow")))
})
