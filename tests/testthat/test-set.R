# Set tokens: gene tokens pooled into latent tokens by attention, unpooled back.

test_that("set_tokens trains, generates, reloads, and its tokens can be interpreted", {
  x <- pbmc_sce()[, 1:200]
  model <- fit_expression_model(x, architecture = "set_tokens", condition = "cell_type", epochs = 2,
                                n_tokens = 4, token_dim = 8, pool_heads = 2, n_layers = 1, n_heads = 2,
                                verbose = FALSE, seed = 3)
  expect_true(all(is.finite(model$history$train_loss)))
  expect_identical(model$spec$summary_token, 1)  # a map of the whole cell follows the pooled tokens
  cells <- generate_cells(model, condition = c(B = 3, NK = 2), steps = 4, seed = 1)
  expect_identical(dim(cells), c(2000L, 5L))
  # Latent tokens are summaries of the cell: activations per token (the 4
  # pooled ones, then the summary token), and gene loadings by gradient
  # (there is no linear gene path to read weights from).
  activations <- token_activations(model, x[, 1:20])
  expect_identical(dim(activations), c(20L, 5L))
  expect_error(token_loadings(model), "no gene loadings")
  loadings <- token_loadings(model, x[, 1:20], method = "gradient")
  expect_identical(dim(loadings), c(5L, 2000L))
  expect_true(all(is.finite(loadings)) && any(loadings != 0))
  path <- tempfile(fileext = ".exprflow")
  save_model(model, path)
  expect_identical(generate_cells(load_model(path), condition = c(B = 3, NK = 2), steps = 4, seed = 1), cells)
})
