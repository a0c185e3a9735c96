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
  expect_error(generate_cells(nb, condition = data.frame(cell_type = "B")), "unconditional")
  expect_error(fit_baseline(small_counts()[, 1, drop = FALSE]), "two cells")
  bad <- as.matrix(small_counts()); bad[1, 1] <- -1
  expect_error(fit_baseline(bad), "negative")
  expect_error(fit_baseline(small_counts(), "gaussian"), "should be one of")
  # A setting of another type is not silently ignored.
  expect_error(fit_baseline(small_counts(), "independent_nb", n_pcs = 5),
               "`n_pcs` is a setting of type = \"pca_gaussian\", not of \"independent_nb\"")
  expect_error(fit_baseline(small_counts(), "pca_gaussian", n_factors = 5),
               "`n_factors` is a setting of type = \"nb_copula\", not of \"pca_gaussian\"")
})

# Counts of `cells` cells in which genes 1-20 share one hidden program (a
# log-normal factor of this strength; 0: every gene independent) and genes
# 21-200 do not, with library sizes that vary.
module_counts <- function(cells, seed, strength = 1) {
  set.seed(seed)
  program <- stats::rnorm(cells)
  base <- exp(stats::runif(200, log(2), log(20)))
  size <- stats::runif(cells, 0.7, 1.4)
  mu <- outer(base, size) * rbind(matrix(exp(strength * program), 20, cells, byrow = TRUE), matrix(1, 180, cells))
  counts <- matrix(stats::rnbinom(length(mu), size = 5, mu = mu), 200, cells,
                   dimnames = list(paste0("g", 1:200), paste0("c", seq_len(cells))))
  counts
}

# Mean correlation of log-normalised expression within genes 1-20, and
# between them and genes 21-200.
module_correlations <- function(counts) {
  counts <- as.matrix(counts)
  r <- stats::cor(t(log1p(t(t(counts) / colSums(counts)) * 1e4)))
  within <- r[1:20, 1:20]
  c(within = mean(within[upper.tri(within)]), across = mean(r[1:20, 21:200]))
}

test_that("the NB copula baseline keeps each gene's NB marginal and the genes' correlation", {
  real <- module_counts(400, seed = 3)
  copula <- fit_baseline(real, "nb_copula")
  independent <- fit_baseline(real, "independent_nb")
  expect_s3_class(copula, "exprflow_nb_copula")
  # The marginals are the independent-NB baseline's, fitted the same way.
  expect_identical(copula$share, independent$share)
  expect_identical(copula$theta, independent$theta)
  # One program: one factor rises above the noise edge.
  expect_identical(ncol(copula$copulas$all$loadings), 1L)
  expect_equal(rowSums(copula$copulas$all$loadings^2) + copula$copulas$all$residual, rep(1, 200))
  fake <- as.matrix(SingleCellExperiment::counts(generate_cells(copula, n = 3000, seed = 1)))
  flat <- as.matrix(SingleCellExperiment::counts(generate_cells(independent, n = 3000, seed = 1)))
  expect_true(all_whole(fake))
  # Gene means as the independent baseline's.
  expect_equal(rowMeans(fake) / rowMeans(flat), rep(1, 200), tolerance = 0.1, ignore_attr = TRUE)
  truth <- module_correlations(real)
  expect_gt(truth[["within"]], 0.25)
  made <- module_correlations(fake)
  # The copula reproduces the program's correlation, and the negative one it
  # leaves between the program's genes and the others once expression is
  # normalised by the cell's total; independent NB draws do neither.
  expect_equal(made[["within"]], truth[["within"]], tolerance = 0.25)
  expect_lt(truth[["across"]], -0.05)
  expect_equal(made[["across"]], truth[["across"]], tolerance = 0.3)
  expect_lt(abs(module_correlations(flat)[["within"]]), 0.05)
  expect_gt(module_correlations(flat)[["across"]], truth[["across"]] / 3)
  again <- generate_cells(copula, n = 3000, seed = 1)
  expect_identical(as.matrix(SingleCellExperiment::counts(again)), fake)
  expect_output(print(copula), "factors    : 1")
})

test_that("the NB copula gives few cells and independent genes no factor, and checks n_factors", {
  real <- module_counts(400, seed = 4)
  # Independent genes have no eigenvalue above the noise edge.
  independent <- module_counts(400, seed = 4, strength = 0)
  expect_identical(ncol(fit_baseline(independent, "nb_copula")$copulas$all$loadings), 0L)
  expect_identical(ncol(fit_baseline(real, "nb_copula", n_factors = 0)$copulas$all$loadings), 0L)
  # Per level: a level of two cells has no factor; the other its program.
  labels <- c(rep("many", 398), rep("two", 2))
  per_level <- fit_baseline(real, "nb_copula", condition = labels)
  expect_identical(vapply(per_level$copulas, function(k) ncol(k$loadings), integer(1)), c(many = 1L, two = 0L))
  fake <- generate_cells(per_level, condition = c(many = 5, two = 5), seed = 2)
  expect_identical(as.vector(table(fake$condition)), c(5L, 5L))
  # A level of more cells than the copula reads (2,000) is estimated on an even subset of them.
  large <- module_counts(2500, seed = 5)
  expect_identical(ncol(fit_baseline(large, "nb_copula")$copulas$all$loadings), 1L)
  expect_error(fit_baseline(real, "nb_copula", n_factors = -1), "`n_factors`")
  expect_error(fit_baseline(real, "nb_copula", n_factors = 1.5), "`n_factors`")
})

test_that("the copula's score attenuation is corr(Z, score) of counts cut from a Gaussian", {
  mu <- c(0.05, 0.5, 3, 40)
  theta <- c(2, 1e8, 5, 10)
  exact <- exprflow:::.score_attenuation(mu, theta)
  set.seed(11)
  z <- stats::rnorm(2e5)
  simulated <- vapply(seq_along(mu), function(g) {
    y <- matrix(if (theta[g] >= 1e8) stats::qpois(stats::pnorm(z), mu[g]) else
      stats::qnbinom(stats::pnorm(z), size = theta[g], mu = mu[g]), 1L)
    score <- exprflow:::.nb_normal_scores(y, 1, rep(mu[g], length(z)), theta[g])
    stats::cor(z, as.vector(score))
  }, numeric(1))
  expect_equal(exact, simulated, tolerance = 0.01)
  # Fewer distinct values, more attenuation; near-continuous counts barely any.
  expect_true(all(diff(exact) > 0))
  expect_gt(exact[4], 0.97)
  expect_lt(exact[1], 0.6)
  expect_identical(exprflow:::.score_attenuation(0, 5), 1)
})

test_that("the training-cells reference draws real cells of each level, distinct while there are enough", {
  sce <- pbmc_sce()
  train <- sce[, 1:900]
  ref <- fit_baseline(train, "training_cells", condition = "cell_type")
  expect_s3_class(ref, "exprflow_training_cells")
  expect_output(print(ref), "cells      : 900")
  n_b <- sum(train$cell_type == "B")
  fake <- generate_cells(ref, condition = c(B = n_b, NK = 3), seed = 3)
  drawn <- as.matrix(SingleCellExperiment::counts(fake))
  real <- as.matrix(SingleCellExperiment::counts(train))
  # Every drawn cell is a training cell of the asked-for level, its counts and library size its own.
  key <- function(m) apply(m, 2, paste, collapse = ",")
  source_cell <- match(key(drawn), key(real))
  expect_false(anyNA(source_cell))
  expect_identical(as.character(train$cell_type[source_cell]), as.character(fake$cell_type))
  expect_identical(fake$library_size, unname(colSums(real[, source_cell])))
  # As many B cells as the level has: each one once.
  expect_setequal(source_cell[fake$cell_type == "B"], which(train$cell_type == "B"))
  # More than the level has: with replacement.
  many <- generate_cells(ref, condition = c(B = n_b + 5), seed = 3)
  expect_identical(ncol(many), n_b + 5L)
  expect_true(anyDuplicated(key(as.matrix(SingleCellExperiment::counts(many)))) > 0)
  again <- generate_cells(ref, condition = c(B = n_b, NK = 3), seed = 3)
  expect_identical(SingleCellExperiment::counts(again), SingleCellExperiment::counts(fake))
  expect_error(embed_cells(ref, sce), "no embedding")
})

test_that("baselines fit on the cells with counts and generate empty cells as often as training has them", {
  sce <- pbmc_sce()[, 1:600]
  counts <- as.matrix(SingleCellExperiment::counts(sce))
  b_cells <- which(sce$cell_type == "B")
  empty <- b_cells[seq(1, length(b_cells), by = 2)]
  counts[, empty] <- 0L
  labels <- sce$cell_type
  # The PCA's axes come from a randomised SVD: its centre is compared.
  parameters <- function(model) {
    if (model$type == "pca_gaussian") model$pca$centre else model[setdiff(names(model), c("library_sizes", "level_counts"))]
  }
  for (type in c("independent_nb", "nb_copula", "pca_gaussian")) {
    with_empty <- fit_baseline(counts, type, condition = labels)
    # The same fit as on the cells with counts alone ...
    expect_equal(parameters(with_empty), parameters(fit_baseline(counts[, -empty], type, condition = labels[-empty])),
                 info = type)
    # ... but the empty cells stay in the library sizes drawn.
    fake <- generate_cells(with_empty, condition = c(B = 400), seed = 1)
    library_size <- Matrix::colSums(SingleCellExperiment::counts(fake))
    expect_equal(mean(library_size == 0), length(empty) / length(b_cells), tolerance = 0.1, info = type)
    # A level without empty training cells generates none.
    others <- generate_cells(with_empty, condition = c(NK = 200), seed = 1)
    expect_false(any(Matrix::colSums(SingleCellExperiment::counts(others)) == 0), info = type)
  }
  # The reference keeps every real cell, empty ones included.
  reference <- fit_baseline(counts, "training_cells", condition = labels)
  drawn <- generate_cells(reference, condition = c(B = length(b_cells)), seed = 1)
  expect_identical(sum(Matrix::colSums(SingleCellExperiment::counts(drawn)) == 0), length(empty))
  # A level with no cell with counts cannot be fitted.
  counts[, b_cells] <- 0L
  expect_error(fit_baseline(counts, "independent_nb", condition = labels), "level\\(s\\) 'B' of `condition`")
  expect_s3_class(fit_baseline(counts, "training_cells", condition = labels), "exprflow_training_cells")
})

test_that("a baseline takes `condition` as a data.frame, one row per cell or one row, as the models do", {
  sce <- pbmc_sce()
  nb <- fit_baseline(sce, "independent_nb", condition = "cell_type")
  from_table <- generate_cells(nb, condition = data.frame(cell_type = c("B", "NK", "B")), seed = 4)
  from_labels <- generate_cells(nb, condition = c("B", "NK", "B"), seed = 4)
  expect_identical(as.character(from_table$cell_type), c("B", "NK", "B"))
  expect_identical(SingleCellExperiment::counts(from_table), SingleCellExperiment::counts(from_labels))
  expect_identical(as.character(generate_cells(nb, n = 4, condition = data.frame(cell_type = "NK"))$cell_type),
                   rep("NK", 4))
  expect_error(generate_cells(nb, condition = data.frame(stim = "ctrl")),
               "`condition` has column\\(s\\) 'stim', which are not the baseline's condition \\('cell_type'\\)")
  expect_error(generate_cells(nb, condition = data.frame(cell_type = "Ghost")), "unknown condition level")
  # Labels given as values: the column is called "condition".
  by_value <- fit_baseline(SingleCellExperiment::counts(sce), "independent_nb", condition = sce$cell_type)
  expect_identical(ncol(generate_cells(by_value, condition = data.frame(condition = c("B", "NK")))), 2L)
})

test_that("save_model() and load_model() keep a baseline: the same seed draws the same cells", {
  sce <- pbmc_sce()[, 1:400]
  copula <- fit_baseline(sce, "nb_copula", condition = "cell_type")
  path <- tempfile(fileext = ".exprflow")
  expect_identical(save_model(copula, path), copula)
  restored <- load_model(path)
  expect_identical(restored, copula)
  expect_identical(SingleCellExperiment::counts(generate_cells(restored, condition = c(B = 20), seed = 3)),
                   SingleCellExperiment::counts(generate_cells(copula, condition = c(B = 20), seed = 3)))
  expect_error(save_model(copula, path, adapter_only = TRUE), "only a fine-tuned exprflow_model has a LoRA adapter")
  # An R data file that holds something else is refused.
  saveRDS(list(a = 1), path)
  expect_error(load_model(path), "is an R data file, not an exprflow model")
})
