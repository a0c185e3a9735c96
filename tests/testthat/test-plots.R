# R/plots.R: plot_training_history() and plot().

test_that("plot_training_history() returns a ggplot of both losses", {
  model <- tiny_model()
  p <- plot_training_history(model)
  expect_true(inherits(p, "ggplot"))
  expect_setequal(unique(p$data$split), c("training", "validation"))
  expect_identical(nrow(p$data), 2L * nrow(model$history))
  expect_match(p$labels$title, "latent_tokens")
  built <- ggplot2::ggplot_build(p)
  expect_length(built$data, 2)
})

test_that("log_scale = TRUE adds a log10 y scale", {
  p <- plot_training_history(tiny_model(), log_scale = TRUE)
  expect_true(inherits(p, "ggplot"))
  expect_true(any(vapply(p$scales$scales, function(s) "y" %in% s$aesthetics, logical(1))))
  expect_match(p$scales$get_scales("y")$trans$name, "log-10")
})

test_that("a model without validation plots the training loss only", {
  model <- fit_tiny(pbmc_sce()[, 1:100], epochs = 2, validation_fraction = 0)
  p <- plot_training_history(model)
  expect_true(inherits(p, "ggplot"))
  expect_identical(unique(p$data$split), "training")
})

test_that("plot_training_history() errors for a non-model", {
  expect_error(plot_training_history(list(history = data.frame())), "`model` must be an exprflow_model")
  expect_error(plot_training_history("model"), "must be an exprflow_model")
})

test_that("plot() draws the history", {
  path <- withr::local_tempfile(fileext = ".pdf")
  grDevices::pdf(path)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_no_error(plot(tiny_model()))
})

test_that("plot_cells draws real and generated cells by source or condition", {
  sce <- pbmc_sce()[, 1:300]
  nb <- fit_baseline(sce, "independent_nb", condition = "cell_type")
  fake <- generate_cells(nb, n = 100)
  p <- plot_cells(sce, fake, condition = "cell_type", n_genes = 300, n_pcs = 10)
  expect_s3_class(p, "ggplot")
  expect_setequal(levels(p$data$source), c("real", "generated"))
  expect_identical(nrow(p$data), 400L)
  skip_if_not_installed("uwot")
  p <- plot_cells(sce, list(nb = fake), condition = "cell_type", method = "umap", color_by = "condition",
                  n_genes = 300, n_pcs = 10)
  expect_s3_class(p, "ggplot")
  expect_error(plot_cells(sce, fake, color_by = "condition"), "needs `condition`")
  expect_error(plot_cells(sce, list(fake)), "named list")
})
