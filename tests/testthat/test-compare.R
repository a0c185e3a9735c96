test_that("compare_models measures models and baselines on the same held-out cells", {
  sce <- pbmc_sce()[, seq(1, 1200, by = 2)]
  cmp <- compare_models(sce, models = list(tiny = c(tiny_settings(), list(epochs = 1))),
                        condition = "cell_type", test_fraction = 0.3, seed = 4,
                        baseline_args = list(state_mlp = list(epochs = 1, hidden = 32, n_layers = 1)),
                        generate_args = list(steps = 5), noise_level = 0.3,
                        metric_args = list(n_genes = 300, n_pcs = 8, n_projections = 20))
  expect_s3_class(cmp, "exprflow_comparison")
  expect_setequal(unique(cmp$model), c("tiny", "independent_nb", "nb_copula", "pca_gaussian", "pca", "state_mlp",
                                       "training_cells"))
  # The token-free model is a baseline, measured like a model; real training cells are the reference.
  expect_true(all(cmp$kind[cmp$model == "state_mlp"] == "baseline"))
  expect_true(all(cmp$kind[cmp$model == "training_cells"] == "reference"))
  expect_setequal(unique(cmp$task[cmp$model == "training_cells"]), c("generation", "cost"))
  expect_setequal(unique(cmp$task[cmp$model == "state_mlp"]), c("generation", "embedding", "reconstruction", "cost"))
  expect_setequal(unique(cmp$task), c("generation", "embedding", "reconstruction", "cost"))
  test_cells <- attr(cmp, "split")
  real <- attr(cmp, "real")
  expect_identical(colnames(real), test_cells)
  # Stratified: every type is held out in proportion.
  share <- table(real$cell_type) / table(sce$cell_type)
  expect_true(all(abs(share - 0.3) < 0.1))
  # As many generated cells per type as held-out cells.
  for (name in c("tiny", "independent_nb", "nb_copula", "pca_gaussian", "state_mlp", "training_cells")) {
    fake <- attr(cmp, "generated")[[name]]
    expect_identical(as.vector(table(fake$cell_type)), as.vector(table(real$cell_type)))
  }
  # The fitted objects come back: the model was trained on the training
  # cells only, and embeds as the comparison measured it.
  fitted <- attr(cmp, "fitted")
  expect_setequal(names(fitted), c("tiny", "independent_nb", "nb_copula", "pca_gaussian", "state_mlp",
                                   "training_cells"))
  expect_s3_class(fitted$tiny, "exprflow_model")
  expect_s3_class(fitted$nb_copula, "exprflow_baseline")
  expect_equal(sum(fitted$tiny$level_counts), ncol(sce) - length(test_cells))
  expect_equal(cmp$value[cmp$model == "tiny" & cmp$metric == "knn_accuracy"],
               embedding_metrics(embed_cells(fitted$tiny, SingleCellExperiment::counts(real)), real$cell_type,
                                 seed = 4)$value[1])
  # Fitting costs: seconds and the process's peak memory (Linux), positive.
  peak <- cmp$value[cmp$metric == "fit_peak_mb"]
  expect_identical(length(peak), 6L)
  if (file.exists("/proc/self/status")) expect_true(all(peak > 10))
  auc <- cmp$value[cmp$metric == "knn_auc"]
  expect_true(all(auc >= 0 & auc <= 1))
  # Real cells are harder to tell from held-out cells than a one-epoch model's.
  knn_auc <- function(name) cmp$value[cmp$model == name & cmp$metric == "knn_auc"]
  expect_lt(knn_auc("training_cells"), knn_auc("tiny"))
  expect_true("heldout_log_likelihood" %in% cmp$metric[cmp$model == "independent_nb"])
  expect_true("reconstruction_log_likelihood" %in% cmp$metric[cmp$model == "tiny"])
  # Every metric's direction comes from one table.
  expect_identical(cmp$lower_is_better, unname(exprflow:::.metric_directions[cmp$metric]))
  chart <- plot(cmp)
  expect_s3_class(chart, "ggplot")
  # One chart: metrics as rows, models as columns, each row ranked 0 (worst) to 1 (best).
  tiles <- chart$data
  expect_true(all(tiles$score >= 0 & tiles$score <= 1, na.rm = TRUE))
  mmd <- tiles[tiles$metric == "mmd_rbf" & tiles$model != "training_cells", ]
  expect_identical(mmd$model[which.max(mmd$score)], mmd$model[which.min(mmd$value)])  # lower is better
  expect_setequal(levels(tiles$kind), c("models", "baselines", "reference"))
  # The reference is shown but not ranked.
  expect_true(all(is.na(tiles$score[tiles$model == "training_cells"])))
  expect_true(any(tiles$model == "training_cells"))
  expect_output(print(cmp), "exprflow_comparison")
  expect_output(print(cmp), "better")
})

test_that("a comparison of the reference alone scores and plots without ranks", {
  sce <- pbmc_sce()[, seq(1, 1200, by = 3)]
  cmp <- compare_models(sce, condition = "cell_type", seed = 2, baselines = "training_cells", reconstruct = FALSE,
                        metric_args = list(n_genes = 200, n_pcs = 5, n_projections = 10))
  expect_identical(unique(cmp$model), "training_cells")
  # Real cells of the held-out cells' own types: classified as well as the
  # condition classifier can (it is trained on real cells too).
  expect_gt(cmp$value[cmp$metric == "condition_accuracy"], 0.6)
  tiles <- plot(cmp)$data
  expect_gt(nrow(tiles), 0)
  expect_true(all(tiles$model == "training_cells"))
  expect_true(all(is.na(tiles$score)))
  expect_identical(as.character(unique(tiles$kind)), "reference")
})

test_that("the NB baseline beats a broken generator it is compared with", {
  sce <- pbmc_sce()
  cmp <- compare_models(sce, condition = "cell_type", baselines = "independent_nb", reconstruct = FALSE,
                        metric_args = list(n_genes = 500, n_pcs = 10, n_projections = 20))
  value <- function(metric) cmp$value[cmp$metric == metric]
  expect_gt(value("mean_pearson"), 0.95)
  expect_gt(value("condition_accuracy"), 0.6)
  # A baseline ignoring cell types (unconditional) must recover them worse.
  pooled <- compare_models(sce, baselines = "independent_nb", reconstruct = FALSE,
                           metric_args = list(n_genes = 500, n_pcs = 10, n_projections = 20))
  expect_lt(value("knn_auc"), pooled$value[pooled$metric == "knn_auc"])
})

test_that("compare_models rejects bad arguments", {
  sce <- pbmc_sce()
  expect_error(compare_models(sce, models = list(1)), "unique, non-empty names")
  expect_error(compare_models(sce, baselines = character(0)), "nothing to compare")
  expect_error(compare_models(sce, test_fraction = 1), "test_fraction")
  expect_error(compare_models(sce, models = list(a = 3), baselines = character(0)), "models\\$a")
  expect_error(compare_models(sce, condition = "nope"), "does not exist")
  expect_error(compare_models(sce, baselines = "independent_nb", baseline_args = list(nb = list())),
               "baseline_args")
})
