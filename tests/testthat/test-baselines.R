test_that("the independent NB baseline reproduces per-level gene means", {
  sce <- pbmc_sce()
  nb <- fit_baseline(sce, "independent_nb", condition = "cell_type")
  expect_s3_class(nb, "exprflow_baseline")
  expect_identical(nb$levels, levels(sce$cell_type))
  fake <- generate_cells(nb, condition = c(B = 2000), seed = 2)
  expect_identical(as.character(unique(fake$cell_type)), "B")
  real <- as.matrix(SingleCellExperiment::counts(sce)[, sce$cell_type == "B"])
  share_real <- rowSums(real) / sum(real)
  share_fake <- Matrix::rowSums(SingleCellExperiment::counts(fake)) / sum(SingleCellExperiment::counts(fake))
  expect_gt(cor(share_real, share_fake), 0.99)
  # Library sizes are drawn from the level's training cells; the counts' totals scatter around them.
  expect_identical(fake$library_size, unname(Matrix::colSums(SingleCellExperiment::counts(fake))))
  expect_equal(median(fake$library_size), median(colSums(real)), tolerance = 0.1)
  # Seeded and reproducible.
  again <- generate_cells(nb, condition = c(B = 2000), seed = 2)
  expect_identical(SingleCellExperiment::counts(again), SingleCellExperiment::counts(fake))
})

test_that("the NB baseline's held-out likelihood is the sum of NB log-densities", {
  sce <- pbmc_sce()
  nb <- fit_baseline(sce[, 1:900], "independent_nb", condition = "cell_type")
  test <- sce[, 901:905]
  ll <- baseline_log_likelihood(nb, test, condition = "cell_type")
  expect_length(ll, 5)
  y <- as.matrix(SingleCellExperiment::counts(test))[, 1]
  level <- as.character(test$cell_type[1])
  mu <- pmax(nb$share[, level] * sum(y), 1e-6)
  theta <- nb$theta[, level]
  manual <- sum(ifelse(theta >= 1e8, dpois(y, mu, log = TRUE), dnbinom(y, size = theta, mu = mu, log = TRUE)))
  expect_equal(unname(ll[1]), manual)
  expect_error(baseline_log_likelihood(nb, test), "give `condition`")
  expect_error(baseline_log_likelihood(fit_baseline(sce[, 1:50], "pca_gaussian", n_pcs = 5), test),
               "independent_nb")
})

test_that("the PCA-Gaussian baseline samples around each level and embeds cells", {
  sce <- pbmc_sce()
  pg <- fit_baseline(sce, "pca_gaussian", condition = "cell_type", n_pcs = 10)
  fake <- generate_cells(pg, condition = c(B = 300, `CD14+ Mono` = 300), seed = 1)
  expect_true(all_whole(SingleCellExperiment::counts(fake)))
  real_scores <- embed_cells(pg, SingleCellExperiment::counts(sce))
  fake_scores <- embed_cells(pg, SingleCellExperiment::counts(fake))
  expect_identical(dim(real_scores), c(ncol(sce), 10L))
  for (type in c("B", "CD14+ Mono")) {
    real_centre <- colMeans(real_scores[sce$cell_type == type, 1:3])
    fake_centre <- colMeans(fake_scores[fake$cell_type == type, 1:3])
    other <- colMeans(real_scores[sce$cell_type != type, 1:3])
    # Generated cells of a type lie near that type's real cells, far from the rest.
    expect_lt(sqrt(sum((fake_centre - real_centre)^2)), 0.5 * sqrt(sum((other - real_centre)^2)))
  }
  with_dim <- embed_cells(pg, sce)
  expect_identical(dim(SingleCellExperiment::reducedDim(with_dim, "PCA")), c(ncol(sce), 10L))
  expect_error(embed_cells(fit_baseline(sce[, 1:50], "independent_nb"), sce), "no embedding")
})

test_that("an unconditional baseline ignores labels and fit_baseline checks input", {
  nb <- fit_baseline(small_counts(), "independent_nb")
  fake <- generate_cells(nb, n = 7)
  expect_error(generate_cells(nb, n = c(B = 7)), "`n` is one number of cells")
  expect_identical(ncol(fake), 7L)
  expect_error(generate_cells(nb, condition = "B"), "unconditional")
  expect_error(fit_baseline(small_counts()[, 1, drop = FALSE]), "two cells")
  bad <- as.matrix(small_counts()); bad[1, 1] <- -1
  expect_error(fit_baseline(bad), "negative")
  expect_error(fit_baseline(small_counts(), "gaussian"), "should be one of")
})
