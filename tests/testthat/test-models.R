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
  expect_output(print(s), "training cells per condition")
  expect_output(print(summary(tiny_unconditional_model())), "2000 genes")
})

test_that("summary() without validation reports n/a", {
  model <- fit_tiny(pbmc_sce()[, 1:100], validation_fraction = 0)
  expect_true(is.na(summary(model)$best_validation_loss))
  expect_output(print(summary(model)), "best validation loss n/a")
  expect_output(print(model), "validation loss n/a")
})

test_that("functions taking a model reject other objects", {
  expect_error(generate_cells(list(genes = "a"), n = 1), "`model` must be an exprflow_model")
  expect_error(embed_cells(NULL, small_counts()), "`model` must be an exprflow_model")
  expect_error(save_model(structure(list(), class = "other"), tempfile()), "`model` must be an exprflow_model")
})
