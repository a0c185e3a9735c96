test_that("reconstruction at noise level 0 returns the observed counts", {
  model <- tiny_model()
  cells <- pbmc_sce()[, 1:40]
  rec <- reconstruct_cells(model, cells, noise_level = 0, steps = 10)
  expect_s4_class(rec, "SingleCellExperiment")
  expect_identical(dim(rec), c(length(model$genes), 40L))
  expect_identical(SummarizedExperiment::assayNames(rec), c("counts", "reconstructed", "reconstructed_logcounts"))
  observed <- as.matrix(SingleCellExperiment::counts(rec))
  expect_lt(max(abs(SummarizedExperiment::assay(rec, "reconstructed") - observed)), 1e-2)
  expect_identical(as.character(rec$cell_type), as.character(cells$cell_type))
  expect_true(all(is.finite(rec$log_likelihood)))
})

test_that("more noise loses more of the cell", {
  model <- tiny_model()
  cells <- pbmc_sce()[, 1:60]
  ll <- vapply(c(0, 0.3, 1), function(level) {
    mean(reconstruct_cells(model, cells, noise_level = level, steps = 10)$log_likelihood)
  }, numeric(1))
  expect_gt(ll[1], ll[2])
  expect_gt(ll[2], ll[3])
  # The same seed gives the same reconstruction.
  a <- reconstruct_cells(model, cells[, 1:5], noise_level = 0.5, steps = 10, seed = 3)
  b <- reconstruct_cells(model, cells[, 1:5], noise_level = 0.5, steps = 10, seed = 3)
  expect_identical(SummarizedExperiment::assay(a, "reconstructed"), SummarizedExperiment::assay(b, "reconstructed"))
})

test_that("reconstruction keeps library sizes and its likelihood stays below the saturated one", {
  model <- tiny_model()
  cells <- pbmc_sce()[, 1:3]
  rec <- reconstruct_cells(model, cells, noise_level = 0.2, steps = 5)
  mu <- SummarizedExperiment::assay(rec, "reconstructed")
  y <- as.matrix(SingleCellExperiment::counts(rec))
  # The exact NB log-density is checked in the core tests (NbLikelihood);
  # here: no cell is more likely than under its own counts as Poisson means.
  saturated <- colSums(dpois(y, pmax(y, 1e-6), log = TRUE))
  expect_true(all(rec$log_likelihood <= saturated + 1e-6))
  expect_equal(colSums(mu), colSums(y), tolerance = 1e-4)  # library sizes are kept
})

test_that("reconstruct_cells checks its input", {
  model <- tiny_model()
  cells <- pbmc_sce()[, 1:5]
  expect_error(reconstruct_cells(model, cells, noise_level = 2), "noise_level")
  expect_error(reconstruct_cells(model, cells[1:10, ]), "lacks .* genes")
  expect_error(reconstruct_cells(model, cells, condition = rep("Unknown", 5)), "unknown condition level")
  expect_error(reconstruct_cells(model, cells, steps = 5000), "steps must be between")
})

test_that("an unconditional model reconstructs matrix input", {
  model <- tiny_unconditional_model()
  counts <- pbmc_counts()[, 1:10]
  rec <- reconstruct_cells(model, counts, noise_level = 0.5, steps = 5)
  expect_identical(colnames(rec), colnames(counts))
  expect_false("cell_type" %in% colnames(SummarizedExperiment::colData(rec)))
})
