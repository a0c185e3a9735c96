# Latent models (a count VAE, alone as "vae" or with a flow on its codes as
# "latent_mlp"; src/core/api/latent_model.hpp) through the R interface:
# fitting both stages, the history and its plot, training defaults,
# generation, embedding, reconstruction, save / load and compare_models().
# Every model here is tiny (200 cells x 300 genes, 2 + 2 epochs).

# 200 example cells (every 5th, so every cell type is there) x the 300 genes
# with the most counts among them.
latent_cells <- function() {
  .cached("latent_cells", {
    sce <- pbmc_sce()[, seq(1, by = 5, length.out = 200)]
    totals <- Matrix::rowSums(SingleCellExperiment::counts(sce))
    sce[order(totals, decreasing = TRUE)[seq_len(300)], ]
  })
}

latent_settings <- function() list(latent_dim = 4, vae_hidden = 32, vae_layers = 1, hidden = 32, n_layers = 1)

fit_latent <- function(architecture = "latent_mlp", ...) {
  settings <- latent_settings()
  if (architecture == "vae") settings[c("hidden", "n_layers")] <- NULL
  do.call(fit_expression_model, c(list(latent_cells(), architecture, condition = "cell_type", epochs = 2,
                                       training = if (architecture != "vae") list(vae_epochs = 2) else list(),
                                       batch_size = 64, learning_rate = 1e-3, verbose = FALSE, seed = 1),
                                  settings, list(...)))
}

latent_model <- function() .cached("latent_mlp_model", fit_latent("latent_mlp"))

# Generates `condition`'s cells, checks their shape, and that the model saved
# and reloaded generates the same cells for the same seed; returns them.
expect_reloaded_generates_same <- function(model, condition = c(B = 3, NK = 2)) {
  cells <- generate_cells(model, condition = condition, steps = 4, seed = 1)
  expect_identical(dim(cells), c(length(model$genes), as.integer(sum(condition))))
  path <- tempfile(fileext = ".exprflow")
  on.exit(unlink(path))
  save_model(model, path)
  expect_identical(generate_cells(load_model(path), condition = condition, steps = 4, seed = 1), cells)
  invisible(cells)
}

test_that("latent_mlp trains a VAE stage and a latent stage, each with its own epochs", {
  model <- latent_model()
  expect_s3_class(model, "exprflow_model")
  expect_identical(model$architecture, "latent_mlp")
  expect_identical(model$space, "latent")
  expect_true(model$trained)
  h <- model$history
  expect_true("stage" %in% names(h))
  expect_identical(as.character(h$stage), c("vae", "vae", "latent", "latent"))
  expect_equal(h$epoch, c(1, 2, 1, 2))
  expect_true(all(is.finite(h$train_loss)))

  p <- plot_training_history(model)
  expect_s3_class(p, "ggplot")
  layout <- ggplot2::ggplot_build(p)$layout$layout
  expect_identical(nrow(layout), 2L)  # one panel per stage
  # Panels in training order. Fails at the time of writing: R/plots.R turns
  # long$stage into a factor (levels in stage order) only after ggplot() has
  # taken its copy of `long`, so the panels come out alphabetically.
  expect_identical(as.character(layout$stage), c("vae", "latent"))

  latent <- training_defaults("latent_mlp")
  expect_true(all(c("vae_epochs", "kl_warmup", "kl_weight", "vae_learning_rate") %in% names(latent)))
  state <- training_defaults("state_mlp")
  expect_false(any(c("vae_epochs", "kl_warmup") %in% names(state)))
  expect_true("epochs" %in% names(state))
})

test_that("latent models generate whole counts with a drawn library size", {
  model <- latent_model()
  sce <- generate_cells(model, n = 30, seed = 2, steps = 5)
  expect_s4_class(sce, "SingleCellExperiment")
  expect_identical(dim(sce), c(300L, 30L))
  counts <- SingleCellExperiment::counts(sce)
  expect_true(all_whole(counts))
  expect_true(all(as.matrix(counts) >= 0))
  expect_true("library_size" %in% names(SummarizedExperiment::colData(sce)))
  observed <- Matrix::colSums(SingleCellExperiment::counts(latent_cells()))
  # library_size is the cells' total count; "empirical" (the default) draws the
  # size a cell's counts are drawn around from the training cells.
  expect_identical(sce$library_size, unname(Matrix::colSums(counts)))
  expect_equal(mean(log(sce$library_size)), mean(log(observed)), tolerance = 0.1)
  expect_identical(S4Vectors::metadata(sce)$exprflow$library_size, "empirical")

  lognormal <- generate_cells(model, n = 30, seed = 2, steps = 5, library_size = "lognormal")
  expect_identical(ncol(lognormal), 30L)
  expect_true(all_whole(SingleCellExperiment::counts(lognormal)))
  expect_true(all(is.finite(lognormal$library_size) & lognormal$library_size > 0))
  expect_false(all(lognormal$library_size %in% observed))
  expect_identical(S4Vectors::metadata(lognormal)$exprflow$library_size, "lognormal")
  expect_error(generate_cells(model, n = 3, library_size = "gamma"), "lognormal")
  expect_error(generate_cells(model, n = 3, library_size = "matched"), "is for gene-space models")
  expect_identical(S4Vectors::metadata(sce)$exprflow$gene_calibration, "none")
  expect_error(generate_cells(model, n = 3, gene_calibration = "mean"), "'mean' is for gene-space models")
})

test_that("a plain vae samples its prior and refuses a sampler", {
  vae <- .cached("latent_vae_model", fit_latent("vae"))
  expect_identical(vae$default_sampler, "prior")
  expect_identical(as.character(vae$history$stage), c("vae", "vae"))
  sce <- generate_cells(vae, n = 5, seed = 1)
  expect_identical(ncol(sce), 5L)
  expect_true(all_whole(SingleCellExperiment::counts(sce)))
  expect_error(generate_cells(vae, n = 5, method = "euler"), "`method`")
})

test_that("embed_cells gives the posterior means; reconstruct_cells keeps each library size", {
  model <- latent_model()
  x <- latent_cells()
  embedding <- embed_cells(model, SingleCellExperiment::counts(x))
  expect_identical(dim(embedding), c(200L, 4L))
  expect_identical(rownames(embedding), colnames(x))
  expect_true(all(is.finite(embedding)))
  # Cells differ in their codes (not a collapsed posterior returning one point).
  expect_gt(min(apply(embedding, 2, stats::sd)), 0)
  in_sce <- embed_cells(model, x)
  expect_identical(SingleCellExperiment::reducedDim(in_sce, "EXPRFLOW"), embedding)

  cells <- x[, 1:40]
  rec <- reconstruct_cells(model, cells)
  expected <- SummarizedExperiment::assay(rec, "reconstructed")
  expect_identical(dim(expected), c(300L, 40L))
  library_size <- Matrix::colSums(SingleCellExperiment::counts(cells))
  expect_lt(max(abs(colSums(expected) / library_size - 1)), 1e-6)
  expect_true(all(is.finite(rec$log_likelihood)))
  expect_true(all(rec$log_likelihood < 0))
})

test_that("a saved and reloaded latent model generates the same cells", {
  model <- fit_latent("latent_mlp")
  path <- tempfile(fileext = ".pt")
  on.exit(unlink(path))
  save_model(model, path)
  loaded <- load_model(path)
  expect_identical(loaded$architecture, "latent_mlp")
  expect_identical(loaded$history, model$history)
  a <- generate_cells(model, n = 20, seed = 5, steps = 5)
  b <- generate_cells(loaded, n = 20, seed = 5, steps = 5)
  expect_identical(SingleCellExperiment::counts(a), SingleCellExperiment::counts(b))
  expect_identical(a$library_size, b$library_size)
  expect_false(identical(SingleCellExperiment::counts(a),
                         SingleCellExperiment::counts(generate_cells(loaded, n = 20, seed = 6, steps = 5))))
})

test_that("a vae fitted without conditions is saved and reloaded", {
  # Its covariate-centroid table has codes of no covariates: a (1, 0) tensor.
  model <- do.call(fit_expression_model, c(list(latent_cells(), "vae", epochs = 2, batch_size = 64, verbose = FALSE),
                                           latent_settings()[c("latent_dim", "vae_hidden", "vae_layers")]))
  path <- tempfile(fileext = ".pt")
  on.exit(unlink(path))
  save_model(model, path)
  expect_identical(embed_cells(load_model(path), latent_cells()), embed_cells(model, latent_cells()))
})

test_that("compare_models reports a latent model's held-out likelihood next to the NB baseline's", {
  spec <- c(list(architecture = "latent_mlp", epochs = 2, training = list(vae_epochs = 2), batch_size = 64,
                 learning_rate = 1e-3), latent_settings())
  comparison <- compare_models(latent_cells(), models = list(lm = spec), condition = "cell_type",
                               baselines = "independent_nb", generate_args = list(steps = 5),
                               metric_args = list(n_genes = 100, n_pcs = 5), verbose = FALSE)
  expect_s3_class(comparison, "exprflow_comparison")
  ll <- comparison[comparison$metric == "heldout_log_likelihood", ]
  expect_setequal(ll$model, c("lm", "independent_nb"))
  expect_true(all(is.finite(ll$value) & ll$value < 0))
  expect_true(all(ll$task == "reconstruction"))
  # Beside it, the likelihood at the code read off each cell (a
  # reconstruction's), under its own name.
  rec <- comparison$value[comparison$model == "lm" & comparison$metric == "reconstruction_log_likelihood"]
  expect_length(rec, 1L)
  expect_true(is.finite(rec) && rec != ll$value[ll$model == "lm"])
})

test_that("reconstruct_cells estimates a VAE's marginal likelihood by importance sampling", {
  model <- fit_latent("vae")
  cells <- latent_cells()[, 1:40]
  one <- reconstruct_cells(model, cells, seed = 2, importance_samples = 1)
  many <- reconstruct_cells(model, cells, seed = 2, importance_samples = 200)
  expect_true(all(is.finite(many$marginal_log_likelihood)))
  # More draws tighten the bound: on average the estimate rises towards
  # log p(x) (one draw is an ELBO sample, far below it).
  expect_gt(mean(many$marginal_log_likelihood), mean(one$marginal_log_likelihood))
  expect_identical(reconstruct_cells(model, cells, seed = 2, importance_samples = 200)$marginal_log_likelihood,
                   many$marginal_log_likelihood)
  expect_error(reconstruct_cells(model, cells, importance_samples = -1), "importance_samples")
  # Not computed unless asked for (each draw decodes every cell again).
  expect_null(reconstruct_cells(model, cells, seed = 2)$marginal_log_likelihood)
  # Gene-space models have no code to integrate: no such column.
  expect_null(reconstruct_cells(fit_expression_model(latent_cells(), "state_mlp", epochs = 1, hidden = 32,
                                                     n_layers = 1, seed = 1, verbose = FALSE),
                                cells, steps = 2, importance_samples = 100)$marginal_log_likelihood)
})

test_that("latent_grn learns a sparse graph among its latent tokens and generates through it", {
  settings <- latent_settings()[c("latent_dim", "vae_hidden", "vae_layers", "n_layers")]
  model <- do.call(fit_expression_model,
                   c(list(latent_cells(), "latent_grn", condition = "cell_type", epochs = 2,
                          training = list(vae_epochs = 2), batch_size = 64, verbose = FALSE, seed = 1,
                          n_tokens = 4, token_dim = 8, n_heads = 2, graph_degree = 1), settings))
  expect_identical(model$space, "latent")
  expect_identical(model$spec$graph_degree, 1)
  expect_true(all(is.finite(model$history$train_loss)))
  expect_reloaded_generates_same(model)
  expect_error(do.call(fit_expression_model,
                       c(list(latent_cells(), "latent_grn", epochs = 1, verbose = FALSE, n_tokens = 4,
                              graph_degree = -1),
                         settings)),
               "graph_degree")
})

test_that("vae_encoder = 'set_tokens' pools gene tokens into the latent tokens the flow models", {
  settings <- latent_settings()[c("vae_hidden", "vae_layers", "n_layers")]
  model <- do.call(fit_expression_model,
                   c(list(latent_cells(), "latent_dit", condition = "cell_type", epochs = 2,
                          training = list(vae_epochs = 2), batch_size = 64, verbose = FALSE, seed = 1,
                          vae_encoder = "set_tokens", vae_input = "log", vae_set_tokens = 3, vae_token_hidden = 8,
                          vae_pool_heads = 2, token_dim = 8, n_heads = 2), settings))
  expect_identical(model$spec$latent_dim, 6)  # 3 tokens x 2 values
  expect_identical(model$spec$n_tokens, 3)
  activations <- token_activations(model, latent_cells())
  expect_identical(dim(activations), c(ncol(latent_cells()), 3L))
  loadings <- token_loadings(model, latent_cells(), method = "gradient")
  expect_identical(dim(loadings), c(3L, length(model$genes)))
  expect_true(all(is.finite(loadings)) && any(loadings != 0))
  expect_error(token_loadings(model, latent_cells(), method = "weights"), "no gene loadings")
  expect_reloaded_generates_same(model)
  expect_error(do.call(fit_expression_model,
                       c(list(latent_cells(), "latent_dit", epochs = 1, verbose = FALSE, vae_encoder = "set_tokens"),
                         settings)),
               "vae_input")
})

test_that("cells_as_tokens attends across the cells of a set and generates sets jointly", {
  settings <- latent_settings()[c("latent_dim", "vae_hidden", "vae_layers", "n_layers")]
  model <- do.call(fit_expression_model,
                   c(list(latent_cells(), "cells_as_tokens", condition = "cell_type", epochs = 2,
                          training = list(vae_epochs = 2), batch_size = 64, verbose = FALSE, seed = 1,
                          hidden = 16, n_heads = 2, set_size = 4), settings))
  expect_identical(model$space, "latent")
  expect_identical(model$spec$set_size, 4)
  expect_identical(model$spec$shared_time, 1)
  expect_true(all(is.finite(model$history$train_loss)))
  expect_reloaded_generates_same(model, c(B = 6, NK = 2))
  expect_error(do.call(fit_expression_model,
                       c(list(latent_cells(), "cells_as_tokens", epochs = 1, verbose = FALSE, set_size = 0),
                         settings)),
               "set_size")
})

test_that("latent_pathway ties each latent token to a gene set and reads its tokens back", {
  sets <- example_gene_sets()
  sets <- sets[vapply(sets, function(s) sum(s %in% rownames(latent_cells())) >= 5, logical(1))][1:3]
  settings <- latent_settings()[c("vae_hidden", "vae_layers", "n_layers")]
  model <- do.call(fit_expression_model,
                   c(list(latent_cells(), "latent_pathway", condition = "cell_type", gene_sets = sets, epochs = 2,
                          training = list(vae_epochs = 2), batch_size = 64, verbose = FALSE, seed = 1,
                          token_dim = 8, n_heads = 2), settings))
  expect_identical(model$space, "latent")
  expect_identical(model$token_names, c(names(sets), "residual_genes"))
  expect_identical(model$spec$latent_dim, 8)  # (3 sets + residual) x 2 values
  expect_identical(model$spec$n_tokens, 4)
  activations <- token_activations(model, latent_cells())
  expect_identical(dim(activations), c(ncol(latent_cells()), 4L))
  expect_identical(colnames(activations), model$token_names)
  loadings <- token_loadings(model, latent_cells(), method = "gradient")
  outside <- setdiff(model$genes, sets[[1]])
  expect_true(all(loadings[names(sets)[1], outside] == 0))
  expect_true(any(loadings[names(sets)[1], intersect(sets[[1]], model$genes)] != 0))
  expect_reloaded_generates_same(model)
  expect_error(fit_expression_model(latent_cells(), "latent_pathway", epochs = 1, verbose = FALSE), "gene_sets")
  # Its latent width follows from the sets: another one is an error, not silently replaced.
  expect_error(fit_expression_model(latent_cells(), "latent_pathway", gene_sets = sets, latent_dim = 5, epochs = 1,
                                    verbose = FALSE),
               "latent_dim.*follows from the encoder.s tokens")
})
