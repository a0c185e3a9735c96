# GRN attention: gene tokens attending along a regulatory network's edges.

example_grn <- function() {
  genes <- rownames(pbmc_sce())
  data.frame(tf = c(genes[1:5], "NOT_A_GENE", genes[3]), confidence = "A",
             target = c(genes[6:10], genes[1], genes[3]), stringsAsFactors = FALSE)
}

test_that("read_grn reads TRRUST-style and DoRothEA-style files", {
  headerless <- tempfile(fileext = ".tsv")
  writeLines(c("STAT1\tIRF1\tActivation\t123", "SPI1\tCD14\tActivation\t456"), headerless)
  grn <- read_grn(headerless)
  expect_identical(grn$regulator, c("STAT1", "SPI1"))
  expect_identical(grn$target, c("IRF1", "CD14"))
  expect_identical(ncol(grn), 4L)
  with_header <- tempfile(fileext = ".tsv")
  writeLines(c("tf\tconfidence\ttarget\tmor", "STAT1\tA\tIRF1\t1"), with_header)
  grn <- read_grn(with_header)
  expect_identical(c(grn$regulator, grn$target, grn$confidence), c("STAT1", "IRF1", "A"))
  bad <- tempfile(fileext = ".tsv")
  writeLines(c("STAT1\tIRF1", "SPI1"), bad)
  expect_error(read_grn(bad), "line 2 .* fewer than 2")
  expect_error(read_grn(tempfile()), "does not exist")
})

test_that("grn_attention trains, generates and reloads along a regulatory network", {
  x <- pbmc_sce()[, 1:200]
  expect_identical(expression_architectures()$resources[expression_architectures()$name == "grn_attention"], "grn")
  expect_message(model <- fit_expression_model(x, architecture = "grn_attention", condition = "cell_type",
                                               grn = example_grn(), epochs = 1, token_dim = 8, n_layers = 1,
                                               verbose = TRUE),
                 "5 of 7 edges join genes of the data \\(5 regulators, 5 targets\\)")
  cells <- generate_cells(model, condition = c(B = 3), steps = 4, seed = 1)
  expect_identical(dim(cells), c(2000L, 3L))
  expect_identical(ncol(SingleCellExperiment::reducedDim(embed_cells(model, x[, 1:10]), "EXPRFLOW")), 8L)
  path <- tempfile(fileext = ".exprflow")
  save_model(model, path)
  expect_identical(generate_cells(load_model(path), condition = c(B = 3), steps = 4, seed = 1), cells)
})

test_that("grn_attention's cell node starts from every gene by its own weights, or as their mean", {
  x <- pbmc_sce()[, 1:60]
  fit <- function(...) {
    fit_expression_model(x, architecture = "grn_attention", grn = example_grn(), epochs = 1, token_dim = 8,
                         n_layers = 1, verbose = FALSE, ...)
  }
  expect_identical(architecture_defaults("grn_attention")$cell_node_summary, 1)
  weighted <- fit()
  mean_start <- fit(cell_node_summary = FALSE)
  expect_identical(mean_start$spec$cell_node_summary, 0)
  expect_equal(weighted$parameters - mean_start$parameters, nrow(x) * 8)  # a weight per gene and token dimension
})

test_that("grn_attention's recomputed activations train as the stored ones", {
  x <- pbmc_sce()[, 1:96]
  fit <- function(checkpointing) {
    fit_expression_model(x, architecture = "grn_attention", grn = example_grn(), epochs = 2, token_dim = 8,
                         activation_checkpointing = checkpointing, verbose = FALSE)
  }
  recomputed <- fit(TRUE)
  stored <- fit(FALSE)
  expect_identical(recomputed$spec$activation_checkpointing, 1)
  expect_identical(stored$spec$activation_checkpointing, 0)
  expect_identical(architecture_defaults("grn_attention")$activation_checkpointing, "auto")
  expect_equal(recomputed$history$train_loss, stored$history$train_loss, tolerance = 1e-5)
})

test_that("grn_attention explains a missing or unusable network", {
  x <- pbmc_sce()[, 1:50]
  fit <- function(...) fit_expression_model(x, architecture = "grn_attention", epochs = 1, verbose = FALSE, ...)
  expect_error(fit(), "needs `grn`")
  expect_error(fit(grn = data.frame(tf = "A", target = "B")), "none of its 1 edges .*\\(0 of its regulators")
  expect_error(fit(grn = data.frame(a = "A", b = "B")), "`regulator`")
  expect_error(fit(grn = 3), "data.frame of regulator")
  expect_error(fit_expression_model(x, architecture = "state_mlp", grn = example_grn(), epochs = 1, verbose = FALSE),
               "`grn` is used only by architectures built on a regulatory network \\(grn_attention\\)")
})
