# R/io.R: save_model(), load_model(), models restored with readRDS() (each
# object carries its own model bytes) and damaged model files.

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
  expect_false(file.exists(paste0(path, ".partial")))
  restored <- load_model(path)
  expect_s3_class(restored, "exprflow_model")
  for (field in c("architecture", "spec", "genes", "condition", "levels", "level_counts", "history",
                  "parameters", "trained", "device")) {
    expect_identical(restored[[field]], model[[field]], label = field)
  }
  # The file holds exactly the bytes the object carries.
  expect_identical(readBin(path, "raw", file.size(path)), model$state$raw)
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

test_that("readRDS() of a model never saved restores a working model", {
  model <- fresh_model()
  rds <- withr::local_tempfile(fileext = ".rds")
  saveRDS(model, rds)
  restored <- readRDS(rds)
  expect_s3_class(restored, "exprflow_model")
  expected <- generate_cells(model, n = 9, steps = 10, seed = 5)
  assays_identical(expected, generate_cells(restored, n = 9, steps = 10, seed = 5))
  # once rebuilt, it stays usable (embedding and saving too)
  expect_identical(embed_cells(restored, small_counts(2000, 10)), embed_cells(model, small_counts(2000, 10)))
  path <- withr::local_tempfile(fileext = ".exprflow")
  save_model(restored, path)
  assays_identical(expected, generate_cells(load_model(path), n = 9, steps = 10, seed = 5))
})

test_that("a restored object is itself, whatever happened to the file it was saved to", {
  first <- fresh_model(seed = 1)
  second <- fresh_model(seed = 2)
  path <- withr::local_tempfile(fileext = ".exprflow")
  rds <- withr::local_tempfile(fileext = ".rds")
  saveRDS(save_model(first, path), rds)
  expected <- generate_cells(first, n = 6, steps = 10, seed = 3)
  save_model(second, path)  # another model of the same genes now sits at that path
  assays_identical(expected, generate_cells(readRDS(rds), n = 6, steps = 10, seed = 3))
  unlink(path)  # and then no file at all
  assays_identical(expected, generate_cells(readRDS(rds), n = 6, steps = 10, seed = 3))
})

test_that("damaged model files are refused with errors that say what is wrong", {
  model <- fresh_model()
  path <- withr::local_tempfile(fileext = ".exprflow")
  save_model(model, path)
  bytes <- readBin(path, "raw", file.size(path))
  write_variant <- function(b) {
    damaged <- tempfile(fileext = ".exprflow")
    writeBin(b, damaged)
    damaged
  }
  # 64 flipped bytes in the middle of the weights
  flipped <- bytes
  where <- seq(length(bytes) %/% 2, length.out = 64)
  flipped[where] <- xor(flipped[where], as.raw(0xff))
  expect_error(load_model(write_variant(flipped)), "corrupt \\(checksum")
  expect_error(load_model(write_variant(bytes[seq_len(length(bytes) - 100)])), "truncated")
  expect_error(load_model(write_variant(bytes[1:10])), "truncated")
  expect_error(load_model(write_variant(c(bytes, as.raw(1:3)))), "extra bytes")
  newer <- bytes
  newer[9] <- as.raw(99)  # envelope version 99
  expect_error(load_model(write_variant(newer)), "newer exprflow")
  zip <- write_variant(charToRaw("PK\003\004 a zip that is not a model"))
  expect_error(load_model(zip), "trust_legacy = TRUE")
  expect_error(load_model(zip, trust_legacy = TRUE), "not an exprflow model")
  # A damaged copy of the bytes inside an object is refused the same way.
  copy <- model
  copy$state <- new.env(parent = emptyenv())
  copy$state$raw <- flipped
  expect_error(generate_cells(copy, n = 2, steps = 5), "corrupt")
})

test_that("model files of earlier versions load only when trusted, and save in the current format", {
  legacy <- test_path("fixtures", "legacy_state_mlp.exprflow")  # a LibTorch archive, as exprflow wrote them before
  expect_error(load_model(legacy), "earlier exprflow.*trust_legacy = TRUE")
  expect_error(load_model(legacy, trust_legacy = NA), "`trust_legacy`")
  model <- load_model(legacy, trust_legacy = TRUE)
  expect_s3_class(model, "exprflow_model")
  expected <- generate_cells(model, n = 5, steps = 5, seed = 2)
  path <- withr::local_tempfile(fileext = ".exprflow")
  save_model(model, path)
  # Same magic, a newer envelope version (bytes 9-12).
  expect_identical(readBin(path, "raw", 8L), readBin(legacy, "raw", 8L))
  expect_false(identical(readBin(path, "raw", 12L), readBin(legacy, "raw", 12L)))
  converted <- load_model(path)  # no trust needed any more
  assays_identical(expected, generate_cells(converted, n = 5, steps = 5, seed = 2))
  # An object restored by readRDS() that still carries legacy bytes is read as it is.
  old_object <- model
  old_object$state <- new.env(parent = emptyenv())
  old_object$state$raw <- readBin(legacy, "raw", file.size(legacy))
  assays_identical(expected, generate_cells(old_object, n = 5, steps = 5, seed = 2))
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
  expect_error(load_model(path), "not an exprflow model file")
  expect_error(load_model(tempdir()), "is a folder, not a model file")
})

test_that("saving into a missing directory is an error", {
  expect_error(save_model(tiny_unconditional_model(), file.path(tempdir(), "no", "such", "dir", "m.exprflow")))
})
