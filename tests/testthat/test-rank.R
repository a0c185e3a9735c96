# Rank tokens: a cell as the sequence of its highest-valued genes.

test_that("rank_tokens trains, generates, embeds and reloads", {
  x <- pbmc_sce()[, 1:200]
  model <- fit_expression_model(x, architecture = "rank_tokens", condition = "cell_type", epochs = 2,
                                n_top = 16, token_dim = 8, n_layers = 1, n_heads = 2, verbose = FALSE, seed = 3)
  expect_identical(model$spec$n_top, 16)
  expect_identical(model$spec$summary_token, 1)  # the sequence ends with a map of the whole cell
  expect_true(all(is.finite(model$history$train_loss)))
  cells <- generate_cells(model, condition = c(B = 3, NK = 2), steps = 4, seed = 1)
  expect_identical(dim(cells), c(2000L, 5L))
  expect_true(all(SummarizedExperiment::assay(cells, "counts") >= 0))
  expect_identical(as.character(cells$cell_type), rep(c("B", "NK"), c(3, 2)))
  embedded <- SingleCellExperiment::reducedDim(embed_cells(model, x[, 1:10]), "EXPRFLOW")
  expect_identical(dim(embedded), c(10L, 8L))
  # Rank positions are not parts of a cell to interpret.
  expect_error(token_loadings(model), "no tokens to interpret")
  path <- tempfile(fileext = ".exprflow")
  save_model(model, path)
  expect_identical(generate_cells(load_model(path), condition = c(B = 3, NK = 2), steps = 4, seed = 1), cells)
  expect_error(fit_expression_model(x, architecture = "rank_tokens", n_top = 0, epochs = 1, verbose = FALSE),
               "n_top")
})
