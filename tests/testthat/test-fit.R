# R/fit.R: fit_expression_model().

test_that("the shared tiny model is a trained, conditional exprflow_model", {
  model <- tiny_model()
  expect_s3_class(model, "exprflow_model")
  expect_true(model$trained)
  expect_identical(model$architecture, "latent_tokens")
  expect_identical(model$genes, rownames(pbmc_sce()))
  expect_identical(model$condition, "cell_type")
  expect_identical(model$levels, levels(pbmc_sce()$cell_type))
  expect_equal(unname(model$level_counts), as.numeric(table(pbmc_sce()$cell_type)))
  expect_identical(names(model$level_counts), model$levels)
  expect_identical(model$device, "cpu")
  expect_gt(model$parameters, 0)
})

test_that("architecture settings passed through ... reach the model", {
  spec <- tiny_model()$spec
  expect_equal(spec$n_tokens, 4)
  expect_equal(spec$token_dim, 16)
  expect_equal(spec$n_layers, 1)
  expect_equal(spec$n_heads, 2)
  expect_equal(spec$hidden, 64)
  expect_equal(spec$seed, 1)
  defaults <- architecture_defaults("latent_tokens")
  for (name in setdiff(names(defaults), c("n_tokens", "token_dim", "n_layers", "n_heads", "hidden", "seed"))) {
    expect_identical(spec[[name]], defaults[[name]], label = name)
  }
})

test_that("the training history has one row per epoch with sensible values", {
  h <- tiny_model()$history
  expect_s3_class(h, "data.frame")
  expect_true(all(c("epoch", "train_loss", "validation_loss", "learning_rate", "seconds") %in% names(h)))
  expect_equal(h$epoch, 1:3)
  expect_true(all(is.finite(h$train_loss) & h$train_loss > 0))
  expect_true(all(is.finite(h$validation_loss) & h$validation_loss > 0))
  expect_true(all(h$learning_rate > 0 & h$learning_rate <= 1e-3))
  expect_true(all(h$seconds >= 0))
})

test_that("a short fit on the example data lowers the validation loss", {
  model <- fit_expression_model(pbmc_sce(), "latent_tokens", condition = "cell_type", epochs = 8, n_tokens = 4,
                                token_dim = 16, n_layers = 1, n_heads = 2, hidden = 64,
                                batch_size = 128, learning_rate = 1e-3, verbose = FALSE, seed = 1)
  loss <- model$history$validation_loss
  expect_length(loss, 8)
  expect_lt(min(loss[-1]), loss[1])
  expect_lt(loss[length(loss)], loss[1])
})

test_that("without a validation fraction the validation loss is NA", {
  model <- fit_tiny(pbmc_sce()[, 1:200], epochs = 2, validation_fraction = 0)
  expect_equal(nrow(model$history), 2)
  expect_true(all(is.na(model$history$validation_loss)))
  expect_true(all(is.finite(model$history$train_loss)))
  expect_null(model$condition)
  expect_length(model$levels, 0)
})

test_that("the same seed gives identical models; a different seed does not", {
  sce <- pbmc_sce()[, 1:300]
  fit <- function(seed) fit_tiny(sce, condition = "cell_type", epochs = 2, seed = seed)
  a <- fit(7)
  b <- fit(7)
  c <- fit(8)
  losses <- c("epoch", "train_loss", "validation_loss", "learning_rate")
  expect_identical(a$history[losses], b$history[losses])
  generate <- function(model) generate_cells(model, n = 20, steps = 10, seed = 3)
  cells_a <- generate(a)
  cells_b <- generate(b)
  expect_identical(SummarizedExperiment::assay(cells_a, "counts"),
                   SummarizedExperiment::assay(cells_b, "counts"))
  expect_identical(SummarizedExperiment::assay(cells_a, "logcounts"),
                   SummarizedExperiment::assay(cells_b, "logcounts"))
  expect_identical(SingleCellExperiment::colData(cells_a), SingleCellExperiment::colData(cells_b))

  expect_false(identical(a$history$train_loss, c$history$train_loss))
  expect_false(identical(a$history$validation_loss, c$history$validation_loss))
  expect_false(identical(SummarizedExperiment::assay(cells_a, "logcounts"),
                         SummarizedExperiment::assay(generate(c), "logcounts")))
})

test_that("the same counts as SingleCellExperiment or matrix + condition vector give the same model", {
  sce <- pbmc_sce()[, 1:200]
  from_sce <- fit_tiny(sce, condition = "cell_type", seed = 5)
  from_matrix <- fit_tiny(SummarizedExperiment::assay(sce, "counts"), condition = sce$cell_type, seed = 5)
  losses <- c("train_loss", "validation_loss")
  expect_identical(from_sce$history[losses], from_matrix$history[losses])
  expect_identical(from_matrix$condition, "condition")
  expect_identical(from_sce$levels, from_matrix$levels)
})

test_that("verbose = TRUE trains without error; verbose follows interactive() by default", {
  expect_no_error(suppressMessages(fit_tiny(pbmc_sce()[, 1:100], verbose = TRUE)))
  for (f in list(fit_expression_model, compare_models, fit_connectivity, cross_validate_connectivity)) {
    expect_identical(formals(f)$verbose, quote(interactive()))
  }
})

test_that("the progress bar shows the epoch and the losses", {
  expect_identical(exprflow:::.progress_status(0L, 0.5, NaN), "epoch 1 | loss 0.5")
  expect_identical(exprflow:::.progress_status(3L, 0.25, 0.125), "epoch 4 | loss 0.25 | validation 0.125")
  quiet <- exprflow:::.training_progress(FALSE, environment())
  expect_true(quiet(1, 4, 0.5, "model", 0L, NaN))
})

test_that("training settings are passed on and unknown ones are rejected", {
  sce <- pbmc_sce()[, 1:100]
  expect_s3_class(fit_tiny(sce, training = list(weight_decay = 0, grad_clip = 0.5)), "exprflow_model")
  expect_error(fit_tiny(sce, training = list(bogus = 1)), "unknown option 'bogus'")
  expect_error(fit_tiny(sce, training = list(ema_decay = 2)), "ema_decay")
  expect_error(fit_tiny(sce, training = 1), "`training` must be a named list")
})

test_that("training in bfloat16 trains a usable model and differs from float32", {
  sce <- pbmc_sce()[, 1:200]
  expect_error(fit_tiny(sce, training = list(precision = "half")), "training\\$precision")
  # Where bfloat16 products are emulated everything still runs, with a warning.
  fast <- isTRUE(suppressWarnings(exprflow_info())$bfloat16_fast)
  in_bfloat16 <- function(f) if (fast) expect_no_warning(f()) else expect_warning(f(), "emulated")
  bf16 <- in_bfloat16(function() {
    fit_tiny(sce, condition = "cell_type", epochs = 2, training = list(precision = "bfloat16"))
  })
  f32 <- fit_tiny(sce, condition = "cell_type", epochs = 2)
  # bfloat16 lends OpenBLAS's threads to LibTorch while it runs, and gives them back.
  threads <- function() unlist(suppressWarnings(exprflow_info())[c("torch_threads", "blas_threads")])
  before <- threads()
  suppressWarnings(fit_tiny(sce, epochs = 1, training = list(precision = "bfloat16")))  # warns where emulated
  expect_identical(threads(), before)
  expect_true(all(is.finite(bf16$history$validation_loss)))
  expect_false(identical(bf16$history$train_loss, f32$history$train_loss))
  # The products cost digits, not the fit: validation losses within 5%.
  expect_lt(abs(tail(bf16$history$validation_loss, 1) / tail(f32$history$validation_loss, 1) - 1), 0.05)
  # 100 cells at once: the decoder's product is large enough to run in bfloat16
  # (smaller ones stay float32, where the casts would cost more than they save).
  draw <- function(precision) {
    generate_cells(bf16, condition = c(B = 100), steps = 5, seed = 1, precision = precision)
  }
  expect_error(draw("half"), "should be one of")
  f32_cells <- draw("float32")
  bf16_cells <- in_bfloat16(function() draw("bfloat16"))
  counts <- SummarizedExperiment::assay(bf16_cells, "counts")
  expect_true(all(is.finite(as.matrix(counts))))
  expect_false(identical(counts, SummarizedExperiment::assay(f32_cells, "counts")))
  # Transfer and reconstruction of observed cells take the same setting.
  moved <- function(precision) {
    SingleCellExperiment::counts(transfer_cells(bf16, sce, to = "B", steps = 5, seed = 1, precision = precision))
  }
  expect_error(moved("half"), "should be one of")
  moved_bf16 <- in_bfloat16(function() moved("bfloat16"))
  expect_true(all(is.finite(as.matrix(moved_bf16))))
  expect_false(identical(moved_bf16, moved("float32")))
  restored <- function(precision) {
    rec <- reconstruct_cells(bf16, sce, noise_level = 0.5, steps = 5, seed = 1, precision = precision)
    SummarizedExperiment::assay(rec, "reconstructed")
  }
  restored_bf16 <- in_bfloat16(function() restored("bfloat16"))
  expect_true(all(is.finite(restored_bf16)))
  expect_false(identical(restored_bf16, restored("float32")))
})

# --- bad arguments ------------------------------------------------------------

test_that("an unknown architecture is rejected, listing the valid ones", {
  sce <- pbmc_sce()[1:50, 1:20]
  expect_error(fit_tiny(sce, architecture = "transformer"),
               "unknown architecture 'transformer'; valid: 'cells_as_tokens', 'grn_attention', 'latent_dit'")
  expect_error(fit_tiny(sce, architecture = c("a", "b")), "`architecture` must be a single")
  expect_error(fit_tiny(sce, architecture = NA_character_), "`architecture` must be a single")
})

test_that("an unknown architecture setting in ... is rejected and named", {
  sce <- pbmc_sce()[1:50, 1:20]
  expect_error(fit_tiny(sce, n_layer = 2), "unknown option 'n_layer'")
  expect_error(fit_tiny(sce, n_layer = 2), "n_layers")  # lists the known ones
  # an unnamed setting (the 14th positional argument lands in ...)
  expect_error(fit_expression_model(sce, "latent_tokens", NULL, NULL, "counts", 1, 128, 1e-3, 0.1, 10, 1, "cpu",
                                    FALSE, 4),
               "architecture settings in `...` must be named")
})

test_that("architecture settings of the wrong type are rejected clearly", {
  sce <- pbmc_sce()[1:50, 1:20]
  expect_error(fit_tiny(sce, n_tokens = "a"), "option 'n_tokens' must be an integer")
  expect_error(fit_tiny(sce, n_tokens = 2.5), "option 'n_tokens' must be an integer")
  expect_error(fit_tiny(sce, n_heads = 3), "not divisible by the number of heads")
  expect_error(fit_tiny(sce, schedule = "foo"), "unknown noise schedule 'foo'")
})

test_that("non-positive architecture sizes are rejected clearly", {
  sce <- pbmc_sce()[1:50, 1:20]
  expect_error(fit_tiny(sce, n_heads = 0), "n_heads")
  expect_error(fit_tiny(sce, n_tokens = 0), "n_tokens")
  expect_error(fit_tiny(sce, token_dim = -1), "token_dim")
  expect_error(fit_tiny(sce, hidden = 0), "hidden")
  expect_error(fit_tiny(sce, cfg_dropout = 2), "cfg_dropout")
})

test_that("device = 'cuda' without CUDA is a clear error", {
  skip_if(isTRUE(suppressWarnings(exprflow_info())$cuda_available), "CUDA is available here")
  expect_error(fit_tiny(pbmc_sce()[1:50, 1:20], device = "cuda"), "CUDA")
  expect_error(fit_tiny(pbmc_sce()[1:50, 1:20], device = "cuda"), "exprflow_info")
  expect_error(fit_tiny(pbmc_sce()[1:50, 1:20], device = "gpu"), "should be one of")
})

test_that("training arguments are checked", {
  sce <- pbmc_sce()[1:50, 1:20]
  expect_error(fit_tiny(sce, epochs = 0), "`epochs` must be a single whole number >= 1")
  expect_error(fit_tiny(sce, epochs = 1.5), "`epochs`")
  expect_error(fit_tiny(sce, batch_size = 0), "`batch_size`")
  expect_error(fit_tiny(sce, learning_rate = -1), "`learning_rate`")
  expect_error(fit_tiny(sce, validation_fraction = 0.95), "`validation_fraction`")
  expect_error(fit_tiny(sce, patience = -1), "`patience`")
  expect_error(fit_tiny(sce, seed = -1), "`seed`")
  expect_error(fit_tiny(sce, seed = NA), "`seed`")
})

test_that("one or two cells are rejected with a message that says why", {
  expect_error(fit_tiny(pbmc_sce()[, 1]), "at least 2 training cells; the data has 1 cell\\(s\\), 0 of them held out")
  expect_error(fit_tiny(pbmc_sce()[, 1:2]), "the data has 2 cell\\(s\\), 1 of them held out .*validation_fraction = 0")
})

test_that("inputs that are not counts or not categories are refused, not trained on", {
  counts <- as.matrix(small_counts(60, 30))
  expect_error(fit_tiny(counts > 0), "logical \\(TRUE / FALSE\\) values, not counts")
  expect_error(fit_tiny(methods::as(small_counts(60, 30) > 0, "CsparseMatrix")), "logical")
  expect_error(fit_tiny(counts * 0), "holds no counts: every value is 0")
  expect_error(fit_tiny(counts, condition = seq_len(30) / 7), "`condition` has non-whole numbers \\(30 distinct values\\).*factor\\(\\)")
  expect_error(fit_tiny(cbind(counts, counts, counts, counts), condition = seq_len(120)),
               "`condition` has 120 distinct numbers")
  sce <- SingleCellExperiment::SingleCellExperiment(list(counts = counts))
  sce$score <- stats::runif(30)
  expect_error(fit_tiny(sce, condition = "score"), "`condition` column 'score' has non-whole numbers")
  expect_error(fit_tiny(counts, condition = rep(c("B", ""), 15)), "15 empty \\(\"\"\\) values")
  expect_error(fit_tiny(counts, condition = factor(rep(c("B", " "), 15))), "empty")
  # A numeric code made a factor is a category.
  expect_s3_class(fit_tiny(counts, condition = factor(rep(1:2, 15))), "exprflow_model")
})

test_that("fitting leaves the user's R random number stream alone", {
  set.seed(42)
  expected <- stats::runif(3)
  set.seed(42)
  fit_tiny(pbmc_sce()[, 1:100])
  expect_identical(stats::runif(3), expected)
})

test_that("a condition level with a single cell can be fitted and generated", {
  values <- c(rep("a", 29), "b")
  model <- fit_tiny(small_counts(200, 30), condition = values)
  expect_equal(unname(model$level_counts), c(29, 1))
  expect_identical(as.character(generate_cells(model, condition = "b", n = 2, steps = 3)$condition),
                   c("b", "b"))
})

test_that("the objective is an argument of every architecture", {
  sce <- pbmc_sce()[1:80, 1:60]
  flow <- fit_tiny(sce, objective = "flow")
  expect_identical(flow$spec$objective, "flow")
  expect_identical(flow$spec$time_distribution, "uniform")
  expect_null(flow$spec$schedule)
  ddpm_mlp <- fit_expression_model(sce, architecture = "state_mlp", objective = "ddpm", epochs = 1, hidden = 16,
                                   n_layers = 1, verbose = FALSE, schedule = "linear")
  expect_identical(ddpm_mlp$spec$objective, "ddpm")
  expect_identical(ddpm_mlp$spec$schedule, "linear")
  expect_identical(ddpm_mlp$architecture, "state_mlp")
  expect_error(fit_tiny(sce, objective = "gan"), "should be one of")
  expect_error(fit_tiny(sce, objective = c("flow", "ddpm")), "`objective` must be a single")
  # Settings of the other objective are unknown to this one.
  expect_error(fit_tiny(sce, objective = "flow", schedule = "linear"), "unknown option 'schedule'")
})

test_that("state_mlp fits, embeds with its own width and reports no tokens", {
  model <- tiny_flow_model()
  expect_identical(model$architecture, "state_mlp")
  expect_identical(model$spec$hidden, 32)
  expect_true(model$trained)
  emb <- embed_cells(model, pbmc_counts()[, 1:10])
  expect_identical(dim(emb), c(10L, 32L))
  expect_error(token_loadings(model), "no tokens")
})

test_that("flow models train for all epochs by default; DDPM models stop early", {
  sce <- pbmc_sce()[1:80, 1:60]
  # At learning rate 1e-20 the weights cannot move, so the validation loss
  # never improves: patience p ends the run after 1 + p epochs.
  ddpm <- fit_tiny(sce, epochs = 12, learning_rate = 1e-20)
  expect_identical(nrow(ddpm$history), 11L)
  flow <- fit_tiny(sce, objective = "flow", epochs = 12, learning_rate = 1e-20)
  expect_identical(nrow(flow$history), 12L)
  expect_identical(nrow(fit_tiny(sce, objective = "flow", epochs = 12, learning_rate = 1e-20, patience = 2)$history),
                   3L)
  expect_error(fit_tiny(sce, patience = -1), "`patience`")
  expect_error(fit_tiny(sce, patience = NA), "`patience`")
})

test_that("the default learning rates are the measured ones", {
  for (architecture in expression_architectures()$name) {
    expected <- switch(architecture, state_mlp = 3e-3, pathway_tokens = , grn_attention = , rank_tokens = ,
                       set_tokens = 1e-2, 1e-3)
    expect_equal(training_defaults(architecture)$learning_rate, expected, label = architecture)
  }
  for (architecture in c("pathway_tokens", "grn_attention", "rank_tokens", "set_tokens")) {
    expect_equal(training_defaults(architecture)$batch_size, 32, label = architecture)
  }
  expect_equal(training_defaults("state_mlp")$batch_size, 128)
})
