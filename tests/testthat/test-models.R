# R/models.R: the exprflow_model object, print() and summary().

test_that("print() mentions the architecture, genes, condition and training", {
  model <- tiny_model()
  expect_output(print(model), "<exprflow_model> latent_tokens")
  expect_output(print(model), "genes\\s*: 2000")
  expect_output(print(model), "cell_type \\(9 levels: B, ")
  expect_output(print(model), "trained\\s*: 3 epochs")
  expect_output(print(model), "device\\s*: cpu")
  utils::capture.output(result <- withVisible(print(model)))
  expect_false(result$visible)
  expect_identical(result$value, model)
})

test_that("print() of an unconditional model says so", {
  expect_output(print(tiny_unconditional_model()), "none \\(unconditional\\)")
  expect_output(print(tiny_unconditional_model()), "latent_tokens")
})

test_that("summary() reports the architecture, genes and settings", {
  model <- tiny_model()
  s <- summary(model)
  expect_s3_class(s, "summary.exprflow_model")
  expect_identical(s$architecture, "latent_tokens")
  expect_identical(s$n_genes, 2000L)
  expect_identical(s$epochs, 3L)
  expect_equal(s$best_validation_loss, min(model$history$validation_loss))
  expect_equal(s$parameters, model$parameters)
  expect_identical(s$levels, model$level_counts)
  expect_output(print(s), "exprflow model summary: latent_tokens")
  expect_output(print(s), "2000 genes")
  expect_output(print(s), "token_dim = 16")
  # The cells of each level are split into training and validation cells.
  expect_identical(s$split$condition, model$levels)
  expect_identical(s$split$training + s$split$validation, as.integer(model$level_counts))
  expect_true(all(s$split$validation >= 1L))
  expect_equal(sum(s$split$validation), 0.1 * sum(model$level_counts), tolerance = 0.05)
  expect_output(print(s), "cells \\(training / validation\\)")
  unconditional <- summary(tiny_unconditional_model())
  expect_identical(unconditional$split$condition, "all")
  expect_identical(unconditional$split$training + unconditional$split$validation, 300L)
  expect_output(print(unconditional), "2000 genes")
})

test_that("counts of one are singular: \"1 epoch\"", {
  model <- fit_tiny(pbmc_sce()[, 1:100], validation_fraction = 0)
  expect_output(print(model), "trained\\s*: 1 epoch,")
  expect_output(print(summary(model)), "1 epoch in")
  expect_identical(summary(model)$split$validation, 0L)
})

test_that("summary() without validation reports n/a", {
  model <- fit_tiny(pbmc_sce()[, 1:100], validation_fraction = 0, epochs = 2)
  expect_true(is.na(summary(model)$best_validation_loss))
  expect_output(print(summary(model)), "best validation loss n/a")
  expect_output(print(model), "validation loss n/a")
})

test_that("functions taking a model reject other objects", {
  expect_error(generate_cells(list(genes = "a"), n = 1), "`model` must be an exprflow_model")
  expect_error(embed_cells(NULL, small_counts()), "`model` must be an exprflow_model")
  expect_error(save_model(structure(list(), class = "other"), tempfile()), "`model` must be an exprflow_model")
})
