# R/evaluate_metrics.R: evaluation space, distribution distances, gene-level
# agreement, condition accuracy, embedding and reconstruction metrics.

gaussian_cloud <- function(n, d, shift = 0, seed = 1) {
  set.seed(seed)
  matrix(stats::rnorm(n * d, mean = shift), n, d)
}

# Reference log-normalisation computed independently, in double precision.
reference_log <- function(counts, scale_factor = 1e4) {
  dense <- as.matrix(counts)
  log1p(sweep(dense, 2, colSums(dense), "/") * scale_factor)
}

# ---- evaluation space --------------------------------------------------------

test_that("evaluation_space equals a PCA of the top-variance log-normalised genes", {
  counts <- small_counts(200, 100)
  space <- evaluation_space(counts, n_genes = 50, n_pcs = 5)
  expect_s3_class(space, "exprflow_evaluation_space")
  logs <- reference_log(counts)
  variance <- apply(logs, 1, stats::var)
  top <- rownames(counts)[sort(order(-variance)[1:50])]
  expect_identical(space$genes, top)
  reference <- stats::prcomp(t(logs[top, ]), center = TRUE, scale. = FALSE)
  expect_equal(abs(unname(space$rotation)), abs(unname(reference$rotation[, 1:5])), tolerance = 1e-8)
  expect_equal(unname(space$sdev), reference$sdev[1:5], tolerance = 1e-8)
  expect_equal(unname(space$variance_explained), reference$sdev[1:5]^2 / sum(reference$sdev^2),
               tolerance = 1e-8)
  # Projecting the real cells gives the PCA scores (up to each component's sign).
  projected <- project_cells(space, counts)
  expect_identical(dim(projected), c(100L, 5L))
  expect_identical(rownames(projected), colnames(counts))
  expect_identical(colnames(projected), paste0("PC", 1:5))
  expect_equal(abs(unname(projected)), abs(unname(reference$x[, 1:5])), tolerance = 1e-8)
  # Signs are fixed: the largest loading of every component is positive.
  largest <- apply(space$rotation, 2, function(v) v[which.max(abs(v))])
  expect_true(all(largest > 0))
  expect_output(print(space), "5 principal components")
})

test_that("evaluation_space with scaling matches a scaled PCA, and the truncated SVD matches svd()", {
  counts <- small_counts(200, 100)
  space <- evaluation_space(counts, n_genes = 40, n_pcs = 3, scale = TRUE)
  logs <- reference_log(counts)[space$genes, ]
  reference <- stats::prcomp(t(logs), center = TRUE, scale. = TRUE)
  expect_equal(abs(unname(project_cells(space, counts))), abs(unname(reference$x[, 1:3])),
               tolerance = 1e-8)

  counts <- pbmc_counts()
  truncated <- evaluation_space(counts, n_genes = 300, n_pcs = 10)  # irlba path
  logs <- reference_log(counts)[truncated$genes, ]
  full <- svd(scale(t(logs), scale = FALSE), nu = 0, nv = 3)
  expect_equal(abs(unname(truncated$rotation[, 1:3])), abs(full$v), tolerance = 1e-4)
})

test_that("project_cells matches genes by name, whatever the input type", {
  counts <- small_counts(200, 60)
  space <- evaluation_space(counts[, 1:40], n_genes = 50, n_pcs = 4)
  expected <- project_cells(space, counts[, 41:60])
  shuffled <- counts[rev(seq_len(nrow(counts))), 41:60]
  expect_equal(project_cells(space, shuffled), expected)
  expect_equal(project_cells(space, as.matrix(counts[, 41:60])), expected)
  sce <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = counts[, 41:60]))
  expect_equal(project_cells(space, sce), expected)
  # The input is not modified.
  copy <- counts
  invisible(project_cells(space, counts))
  expect_identical(counts, copy)
})

test_that("evaluation_space and project_cells reject bad input clearly", {
  counts <- small_counts(200, 60)
  space <- evaluation_space(counts, n_genes = 50, n_pcs = 4)
  dropped <- counts[setdiff(rownames(counts), space$genes[1:2]), ]
  expect_error(project_cells(space, dropped), "lacks 2 of the evaluation space's 50 genes")
  expect_error(project_cells(space, dropped), space$genes[1], fixed = TRUE)
  expect_error(project_cells(list(), counts), "`space` must be an exprflow_evaluation_space")
  expect_error(evaluation_space(counts, n_pcs = 60), "`n_pcs` \\(60\\) must be at most 59")
  expect_error(evaluation_space(counts, n_genes = 20, n_pcs = 25), "must be at most 19")
  expect_error(evaluation_space(counts, n_genes = 1), "`n_genes`")
  bad <- as.matrix(counts)
  bad[3, 4] <- NA
  expect_error(evaluation_space(bad), "`real` has 1 missing \\(NA\\) or non-finite counts")
  bad[3, 4] <- -1
  expect_error(evaluation_space(bad), "`real` has 1 negative counts")
  text <- matrix(as.character(as.matrix(counts)), nrow(counts), dimnames = dimnames(counts))
  expect_error(evaluation_space(text), "the counts of `real` must be a numeric matrix")
  expect_error(evaluation_space(unname(as.matrix(counts))), "`real` has no gene names")
  expect_error(evaluation_space(data.frame(a = 1:3)), "`real` must be a SingleCellExperiment")
  expect_error(evaluation_space(counts[, 1:2]), "at least 3 are needed")
})

# ---- distribution distances --------------------------------------------------

test_that("identical sets are at distance 0 and indistinguishable", {
  x <- gaussian_cloud(300, 4)
  expect_equal(mmd_rbf(x, x), 0)
  expect_lt(abs(mmd_rbf(x, x, unbiased = TRUE)), 0.01)
  expect_equal(energy_distance(x, x), 0, tolerance = 1e-6)
  expect_equal(wasserstein_distance(x, x), 0)
  expect_equal(wasserstein_distance(x, x, p = 2), 0)
  # Exact copies are kept in one fold, so they never score each other.
  expect_equal(knn_classifier_auc(x, x), 0.5)
  prdc <- precision_recall_density_coverage(x, x)
  expect_named(prdc, c("precision", "recall", "density", "coverage"))
  expect_equal(unname(prdc[c("precision", "recall", "coverage")]), c(1, 1, 1))
})

test_that("samples of one distribution are close, shifted Gaussians far apart", {
  x <- gaussian_cloud(400, 5, seed = 1)
  same <- gaussian_cloud(400, 5, seed = 2)
  shifted <- gaussian_cloud(400, 5, shift = 3, seed = 3)
  expect_lt(mmd_rbf(x, same), 0.02)
  expect_gt(mmd_rbf(x, shifted), 0.3)
  expect_lt(energy_distance(x, same), 0.1)
  expect_gt(energy_distance(x, shifted), 5)
  expect_lt(wasserstein_distance(x, same), 0.15)
  expect_gt(wasserstein_distance(x, shifted), 1.5)
  auc_same <- knn_classifier_auc(x, same)
  expect_gt(auc_same, 0.4)
  expect_lt(auc_same, 0.6)
  expect_gt(knn_classifier_auc(x, shifted), 0.95)
  close <- precision_recall_density_coverage(x, same)
  far <- precision_recall_density_coverage(x, shifted)
  expect_true(all(close[c("precision", "recall", "coverage")] > 0.8))
  expect_gt(close[["density"]], 0.7)
  expect_lt(close[["density"]], 1.3)
  expect_lt(far[["precision"]], 0.2)
  expect_true(all(far[c("recall", "density", "coverage")] < 0.1))
})

test_that("mmd_rbf's default kernel comes from the reference set alone", {
  set.seed(3)
  x <- matrix(rnorm(600), ncol = 2)
  shifted <- function(by) {
    y <- matrix(rnorm(600), ncol = 2)
    y[, 1] <- y[, 1] + by
    y
  }
  from_x <- stats::median(stats::dist(x)) * c(0.5, 1, 2)
  for (by in c(1, 50)) {
    y <- shifted(by)
    expect_equal(mmd_rbf(x, y), mmd_rbf(x, y, bandwidths = from_x))
  }
  # With the pooled cells' median a set 50 units off scored below one 10
  # units off (its own kernel was wider); with the reference's it does not.
  expect_gt(mmd_rbf(x, shifted(50)), mmd_rbf(x, shifted(10)) - 0.02)
  # Pooled {1, 1, 1, 3, 5, 7}: median distance 2, not the last resort's 1.
  expect_equal(mmd_rbf(c(1, 1, 1), c(3, 5, 7)), mmd_rbf(c(1, 1, 1), c(3, 5, 7), bandwidths = c(1, 2, 4)),
               info = "identical reference cells: the pooled cells' scale")
})

test_that("distances have their known closed-form values", {
  # MMD of two point masses at distance 1 with one bandwidth: 2 - 2 exp(-1 / 2).
  expect_equal(mmd_rbf(c(0, 0), c(1, 1), bandwidths = 1), 2 - 2 * exp(-0.5))
  # Energy distance of two point masses a, b is 2 ||a - b|| (here ||a - b|| = 5).
  a <- matrix(c(1, 2), 5, 2, byrow = TRUE)
  b <- matrix(c(4, 6), 3, 2, byrow = TRUE)
  expect_equal(energy_distance(a, b), 10)
  # 1-D Wasserstein of a shifted sample is the shift, for every p.
  x <- gaussian_cloud(500, 1)[, 1]
  expect_equal(wasserstein_distance(x, x + 2.5), 2.5)
  expect_equal(wasserstein_distance(x, x - 2.5, p = 2), 2.5)
  # Unequal sizes, exact: uniform on {0, 1} vs uniform on {0, 0.5, 1} is 1/6.
  expect_equal(wasserstein_distance(c(0, 1), c(0, 0.5, 1)), 1 / 6)
  expect_equal(wasserstein_distance(x, c(x, x)), 0)
  # Sliced W1 of a sample shifted by 3 along the first axis, in 2-D: the
  # average of |3 cos(theta)| over directions, 3 * 2 / pi.
  cloud <- gaussian_cloud(300, 2)
  sliced <- wasserstein_distance(cloud, sweep(cloud, 2, c(3, 0), "+"), n_projections = 4000)
  expect_equal(sliced, 3 * 2 / pi, tolerance = 0.02)
})

test_that("metrics are seeded and leave the caller's random stream alone", {
  x <- gaussian_cloud(3000, 3, seed = 1)
  y <- gaussian_cloud(3000, 3, shift = 0.2, seed = 2)
  set.seed(42)
  first <- stats::runif(1)
  set.seed(42)
  value <- mmd_rbf(x, y, max_cells = 500)
  expect_identical(stats::runif(1), first)
  expect_identical(mmd_rbf(x, y, max_cells = 500), value)
  expect_false(identical(mmd_rbf(x, y, max_cells = 500, seed = 2), value))
  expect_identical(knn_classifier_auc(x, y, max_cells = 500), knn_classifier_auc(x, y, max_cells = 500))
})

test_that("precision, recall, density and coverage follow Naeem et al. on a small example", {
  # Real points 0..9 with k = 1: every radius is 1. Generated: 0.5 (inside the
  # balls of 0 and 1) and 20 (inside none); the generated radii are 19.5.
  out <- precision_recall_density_coverage(0:9, c(0.5, 20), k = 1, balance = FALSE)
  expect_equal(out, c(precision = 0.5, recall = 1, density = 1, coverage = 0.2))
})

test_that("distance functions reject bad input clearly", {
  x <- gaussian_cloud(50, 3)
  expect_error(mmd_rbf(x, x[, 1:2]), "`x` and `y` must have the same number of dimensions")
  expect_error(energy_distance(matrix("a", 3, 3), x), "`x` must be a numeric matrix")
  bad <- x
  bad[2, 2] <- NA
  expect_error(wasserstein_distance(x, bad), "`y` has 1 missing \\(NA\\) or non-finite values")
  expect_error(knn_classifier_auc(x[1:5, ], x, k = 5), "`x` has 5 cells \\(rows\\); at least 6")
  expect_error(precision_recall_density_coverage(x, x[1:3, ], k = 5),
               "`generated` has 3 cells \\(rows\\); at least 6")
  expect_error(mmd_rbf(x, x, bandwidths = -1), "`bandwidths`")
  expect_error(wasserstein_distance(x, x, p = 0.5), "`p`")
  expect_error(knn_classifier_auc(x, x, folds = 1), "`folds`")
})

# ---- gene-level agreement ----------------------------------------------------

test_that("gene statistics agree perfectly for identical and rescaled counts", {
  counts <- small_counts(200, 100)
  out <- gene_statistics_agreement(counts, counts)
  expect_s3_class(out, "data.frame")
  expect_identical(out$statistic, rep(c("mean", "variance", "zero_fraction"), each = 2))
  expect_identical(out$method, rep(c("pearson", "spearman"), 3))
  expect_equal(out$value, rep(1, 6))
  # Doubling every count leaves the normalised values and zero fractions unchanged;
  # genes are matched by name.
  doubled <- (counts * 2)[rev(rownames(counts)), ]
  expect_equal(gene_statistics_agreement(counts, doubled)$value, rep(1, 6))
  # Unrelated cells agree less.
  shuffled <- counts[sample(nrow(counts)), ]
  rownames(shuffled) <- rownames(counts)
  expect_true(all(gene_statistics_agreement(counts, shuffled)$value < 0.5))
})

test_that("library-size and correlation-matrix distances have their known values", {
  counts <- small_counts(200, 100)
  expect_equal(library_size_distance(counts, counts), c(wasserstein_1 = 0, ks = 0))
  # Multiplying counts by 10 shifts every cell's log10(1 + size); the sorted
  # coupling pairs each cell with itself.
  size <- Matrix::colSums(counts)
  out <- library_size_distance(counts, counts * 10)
  expect_equal(out[["wasserstein_1"]], mean(log10(1 + 10 * size) - log10(1 + size)))
  expect_gt(out[["ks"]], 0.5)

  expect_equal(correlation_matrix_distance(counts, counts, n_genes = 30), 0)
  shuffled <- counts[sample(nrow(counts)), ]
  rownames(shuffled) <- rownames(counts)
  distance <- correlation_matrix_distance(counts, shuffled, n_genes = 30)
  expect_gt(distance, 0.05)
  expect_lt(distance, 2)
  # Reference: RMS difference of the two correlation matrices of the real top genes.
  logs <- reference_log(counts)
  top <- order(-apply(logs, 1, stats::var))[1:30]
  difference <- stats::cor(t(logs[top, ])) - stats::cor(t(reference_log(shuffled)[top, ]))
  expect_equal(distance, sqrt(mean(difference^2)), tolerance = 1e-10)
})

test_that("gene-level metrics reject mismatched genes and bad counts", {
  counts <- small_counts(100, 40)
  expect_error(gene_statistics_agreement(counts, counts[-(1:3), ]),
               "`generated` must hold the same genes as `real`: it lacks 3")
  renamed <- counts
  rownames(renamed)[1] <- "not_a_gene"
  expect_error(library_size_distance(counts, renamed), "not_a_gene")
  bad <- as.matrix(counts)
  bad[1, 1] <- Inf
  expect_error(correlation_matrix_distance(counts, bad), "`generated` has 1 missing")
  expect_error(gene_statistics_agreement(counts, counts[, 1]), "`generated`")
})

# ---- condition accuracy ------------------------------------------------------

test_that("condition accuracy is high for separable labels and at chance when permuted", {
  real <- rbind(gaussian_cloud(200, 3, seed = 1), gaussian_cloud(200, 3, shift = 6, seed = 2))
  labels <- rep(c("a", "b"), each = 200)
  generated <- rbind(gaussian_cloud(100, 3, seed = 3), gaussian_cloud(100, 3, shift = 6, seed = 4))
  generated_labels <- rep(c("a", "b"), each = 100)
  accuracy <- condition_accuracy(real, labels, generated, generated_labels)
  expect_equal(as.numeric(accuracy), 1)
  expect_equal(attr(accuracy, "per_label"), c(a = 1, b = 1))
  expect_equal(attr(accuracy, "n_per_label"), c(a = 100, b = 100))
  set.seed(7)
  permuted <- condition_accuracy(real, labels, generated, sample(generated_labels))
  expect_gt(as.numeric(permuted), 0.35)
  expect_lt(as.numeric(permuted), 0.65)
  # A tied vote goes to the label of the nearer neighbour.
  expect_equal(as.numeric(condition_accuracy(c(0, 1), c("a", "b"), c(0.2, 0.8), c("a", "b"), k = 2)), 1)
})

test_that("condition accuracy rejects bad labels", {
  real <- gaussian_cloud(30, 2)
  expect_error(condition_accuracy(real, rep("a", 29), real, rep("a", 30)),
               "`real_labels` has 29 labels for 30 cells")
  expect_error(condition_accuracy(real, rep("a", 30), real, rep("c", 30)),
               "`generated_labels` has 1 labels absent from `real_labels` \\('c'\\)")
  expect_error(condition_accuracy(real, c(NA, rep("a", 29)), real, rep("a", 30)), "missing \\(NA\\)")
  expect_error(condition_accuracy(real[1:10, ], rep("a", 10), real, rep("a", 30), k = 15),
               "`real_embedding` has 10 cells")
})

# ---- partitions and embeddings -----------------------------------------------

test_that("ARI and NMI have their known values", {
  a <- rep(1:4, each = 25)
  expect_equal(adjusted_rand_index(a, a), 1)
  expect_equal(normalized_mutual_information(a, a), 1)
  expect_equal(adjusted_rand_index(a, letters[5 - a]), 1)  # renamed clusters
  expect_equal(adjusted_rand_index(rep(1, 10), rep("x", 10)), 1)
  expect_equal(normalized_mutual_information(rep(1, 10), rep("x", 10)), 1)
  # The textbook example (also scikit-learn's user guide): 0.2424... and 0.5158...
  truth <- c(0, 0, 0, 1, 1, 1)
  predicted <- c(0, 0, 1, 1, 2, 2)
  expect_equal(adjusted_rand_index(truth, predicted), 8 / 33)
  expected_nmi <- 2 * (2 / 3) * log(2) / (log(2) + log(3))
  expect_equal(normalized_mutual_information(truth, predicted), expected_nmi)
  # Independent partitions: ARI near 0.
  set.seed(3)
  labels <- sample(1:5, 2000, replace = TRUE)
  expect_lt(abs(adjusted_rand_index(labels, sample(labels))), 0.01)
  expect_lt(normalized_mutual_information(labels, sample(labels)), 0.01)
  expect_error(adjusted_rand_index(1:3, 1:4), "same length")
  expect_error(normalized_mutual_information(c(1, NA), 1:2), "`a` has 1 missing")
})

test_that("embedding metrics reward separated labels and are at chance for permuted ones", {
  embedding <- rbind(gaussian_cloud(150, 4, seed = 1), gaussian_cloud(150, 4, shift = 8, seed = 2),
                     gaussian_cloud(150, 4, shift = -8, seed = 3))
  labels <- rep(c("x", "y", "z"), each = 150)
  out <- embedding_metrics(embedding, labels)
  expect_identical(out$metric, c("knn_accuracy", "knn_balanced_accuracy", "silhouette",
                                 "kmeans_ari", "kmeans_nmi"))
  value <- stats::setNames(out$value, out$metric)
  expect_equal(unname(value[c("knn_accuracy", "knn_balanced_accuracy", "kmeans_ari", "kmeans_nmi")]),
               c(1, 1, 1, 1))
  set.seed(5)
  permuted <- stats::setNames(embedding_metrics(embedding, sample(labels))$value, out$metric)
  expect_gt(permuted[["knn_accuracy"]], 0.2)
  expect_lt(permuted[["knn_accuracy"]], 0.47)
  expect_gt(value[["silhouette"]], permuted[["silhouette"]] + 0.5)
  # Closer clusters have a lower silhouette.
  closer <- rbind(gaussian_cloud(150, 4, seed = 1), gaussian_cloud(150, 4, shift = 2, seed = 2),
                  gaussian_cloud(150, 4, shift = -2, seed = 3))
  closer_value <- embedding_metrics(closer, labels)
  expect_lt(closer_value$value[3], value[["silhouette"]])
  expect_error(embedding_metrics(embedding, rep("x", 450)), "at least 2 distinct labels")
  expect_error(embedding_metrics(embedding[1:10, ], labels[1:10]), "`embedding` has 10 cells")
})

test_that("embedding metrics read an embedding and its labels from a SingleCellExperiment or Seurat object", {
  embedding <- rbind(gaussian_cloud(60, 4, seed = 1), gaussian_cloud(60, 4, shift = 3, seed = 2))
  rownames(embedding) <- paste0("c", 1:120)
  labels <- rep(c("x", "y"), each = 60)
  expected <- embedding_metrics(embedding, labels)
  sce <- SingleCellExperiment::SingleCellExperiment(
    list(counts = matrix(1L, 3, 120, dimnames = list(paste0("g", 1:3), rownames(embedding)))),
    colData = S4Vectors::DataFrame(group = labels))
  SingleCellExperiment::reducedDim(sce, "EXPRFLOW") <- embedding
  SingleCellExperiment::reducedDim(sce, "other") <- embedding[, 1:2]
  expect_identical(embedding_metrics(sce, "group"), expected)
  expect_identical(embedding_metrics(sce, labels), expected)
  expect_identical(embedding_metrics(sce, "group", dimred = "other"), embedding_metrics(embedding[, 1:2], labels))
  expect_error(embedding_metrics(sce, "group", dimred = "UMAP"),
               "`dimred`: 'UMAP' is not an embedding of `embedding`.*'EXPRFLOW', 'other'")
  expect_error(embedding_metrics(sce, "grp"), "`labels` column 'grp' does not exist")
  expect_error(embedding_metrics(embedding, labels, dimred = "PCA"), "`dimred` names an embedding")
  skip_if_not_installed("SeuratObject")
  seurat <- SeuratObject::CreateSeuratObject(counts = SingleCellExperiment::counts(sce),
                                             meta.data = data.frame(group = labels, row.names = colnames(sce)))
  colnames(embedding) <- paste0("EXPRFLOW_", 1:4)
  seurat[["exprflow"]] <- SeuratObject::CreateDimReducObject(embeddings = embedding, key = "EXPRFLOW_",
                                                             assay = SeuratObject::DefaultAssay(seurat))
  expect_identical(embedding_metrics(seurat, "group"), expected)
})

# ---- reconstruction ------------------------------------------------------------

test_that("reconstruction metrics are 1 for a perfect reconstruction and count constant cells", {
  counts <- as.matrix(small_counts(100, 40))
  out <- reconstruction_metrics(counts, counts * 3)  # same normalised values, exact linear counts
  expect_s3_class(out, "data.frame")
  value <- stats::setNames(out$value, out$metric)
  for (scale in c("log", "counts")) {
    for (axis in c("cell", "gene")) {
      prefix <- paste0(axis, "_pearson_", scale)
      expect_equal(value[[paste0(prefix, "_median")]], 1)
      expect_equal(value[[paste0(prefix, "_mean")]], 1)
    }
  }
  constant_genes <- sum(apply(counts, 1, function(v) all(v == v[1])))
  expect_equal(value[["gene_pearson_counts_dropped"]], constant_genes)
  # A reconstruction with one empty cell: that cell has no correlation.
  reconstructed <- counts
  reconstructed[, 5] <- 0
  value <- stats::setNames(reconstruction_metrics(counts, reconstructed)$value, out$metric)
  expect_equal(value[["cell_pearson_log_dropped"]], 1)
  expect_equal(value[["cell_pearson_counts_median"]], 1)
  # Against an independent reference for noisy counts.
  set.seed(2)
  noisy <- counts + matrix(stats::rpois(length(counts), 1), nrow(counts))
  value <- stats::setNames(reconstruction_metrics(counts, noisy)$value, out$metric)
  per_cell <- vapply(seq_len(ncol(counts)), function(j) stats::cor(counts[, j], noisy[, j]), 1)
  expect_equal(value[["cell_pearson_counts_mean"]], mean(per_cell), tolerance = 1e-10)
  varying <- apply(counts, 1, stats::sd) > 0
  per_gene <- vapply(which(varying), function(i) stats::cor(counts[i, ], noisy[i, ]), 1)
  expect_equal(value[["gene_pearson_counts_median"]], stats::median(per_gene), tolerance = 1e-10)
  expect_error(reconstruction_metrics(counts, counts[, -1]), "must have the same dimensions")
  expect_error(reconstruction_metrics(counts, -counts), "`reconstructed` has .* negative")
})

# ---- the one-call wrapper on real data ---------------------------------------

test_that("generation_metrics: a real half is close to the other half, gene-shuffled cells are not", {
  sce <- pbmc_sce()
  set.seed(11)
  half <- sort(sample(ncol(sce), ncol(sce) / 2))
  settings <- list(n_genes = 500, n_pcs = 10, n_projections = 50)
  close <- do.call(generation_metrics, c(list(sce[, half], sce[, -half], condition = "cell_type"),
                                         settings))
  expected <- c("mmd_rbf", "energy_distance", "wasserstein_1", "wasserstein_2", "knn_auc",
                "precision", "recall", "density", "coverage", "mean_pearson", "mean_spearman",
                "variance_pearson", "variance_spearman", "zero_fraction_pearson",
                "zero_fraction_spearman", "library_size_w1", "library_size_ks",
                "correlation_matrix_distance", "condition_accuracy")
  expect_identical(close$metric, expected)
  expect_identical(names(close), c("metric", "value", "lower_is_better"))
  expect_true(all(close$lower_is_better[1:5]))
  expect_false(any(close$lower_is_better[6:15]))

  counts <- SingleCellExperiment::counts(sce)[, -half]
  shuffled <- counts[sample(nrow(counts)), ]
  rownames(shuffled) <- rownames(counts)
  far <- do.call(generation_metrics, c(list(sce[, half], shuffled), settings))
  close_value <- stats::setNames(close$value, close$metric)
  far_value <- stats::setNames(far$value, far$metric)
  expect_false("condition_accuracy" %in% far$metric)
  expect_gt(close_value[["knn_auc"]], 0.4)
  expect_lt(close_value[["knn_auc"]], 0.6)
  expect_gt(far_value[["knn_auc"]], 0.95)
  expect_lt(close_value[["mmd_rbf"]] * 20, far_value[["mmd_rbf"]])
  expect_gt(close_value[["recall"]], 0.7)
  expect_gt(close_value[["mean_pearson"]], 0.95)
  expect_lt(far_value[["mean_pearson"]], 0.5)
  expect_gt(close_value[["condition_accuracy"]], 0.7)

  # Matrix input with label vectors, and one space fitted on all real cells.
  labels <- list(real = sce$cell_type[half], generated = sce$cell_type[-half])
  space <- evaluation_space(sce[, half], n_genes = 500, n_pcs = 10)
  given <- generation_metrics(SingleCellExperiment::counts(sce)[, half], counts, condition = labels,
                              space = space, n_projections = 50)
  expect_identical(given$metric, expected)
})

# Real and "generated" cells drawn alike: Poisson counts of 40 genes with
# the same seeded rates.
poisson_cells <- function(n_real, n_generated, seed) {
  set.seed(seed)
  genes <- paste0("g", 1:40)
  rate <- stats::rgamma(40, 1, 0.2)
  draw <- function(n, prefix) matrix(stats::rpois(40 * n, rate), 40, dimnames = list(genes, paste0(prefix, 1:n)))
  list(real = draw(n_real, "r"), generated = draw(n_generated, "g"))
}

test_that("generation_metrics scores the condition of a few generated cells against every real cell", {
  # 20 generated cells, 2 of a label that 4 of 120 real cells have: a
  # reference cut to 20 real cells would often lose that label (and have
  # fewer cells than condition_k).
  cells <- poisson_cells(120, 20, seed = 7)
  real <- cells$real
  generated <- cells$generated
  labels <- list(real = rep(c("A", "B", "C"), c(60, 56, 4)), generated = rep(c("A", "B", "C"), c(9, 9, 2)))
  for (fit in c("cross", "all")) {
    out <- generation_metrics(real, generated, condition = labels, n_genes = 30, n_pcs = 5, n_projections = 10,
                              condition_k = 15, space_fit = fit)
    accuracy <- out$value[out$metric == "condition_accuracy"]
    expect_true(accuracy >= 0 && accuracy <= 1, label = fit)
  }
})

test_that("generation_metrics scores a label that only one real cell has", {
  # One real cell of label C: one cross-fitting half has none, so that
  # half's classifier cannot know C and its generated C cells are left out
  # there (they used to stop the whole comparison).
  cells <- poisson_cells(121, 60, seed = 8)
  real <- cells$real
  generated <- cells$generated
  labels <- list(real = rep(c("A", "B", "C"), c(60, 60, 1)), generated = rep(c("A", "B", "C"), c(29, 29, 2)))
  out <- generation_metrics(real, generated, condition = labels, n_genes = 30, n_pcs = 5, n_projections = 10)
  accuracy <- out$value[out$metric == "condition_accuracy"]
  expect_true(is.finite(accuracy) && accuracy >= 0 && accuracy <= 1)
  # A generated label no real cell has is still an error.
  labels$generated[60] <- "D"
  expect_error(generation_metrics(real, generated, condition = labels, n_genes = 30, n_pcs = 5),
               "`condition`: 1 generated labels are absent from the real cells \\('D'\\)")
})

test_that("generation_metrics rejects bad input clearly", {
  sce <- pbmc_sce()[, 1:100]
  counts <- SingleCellExperiment::counts(sce)
  expect_error(generation_metrics(sce, sce[1:1500, ]), "`generated` must hold the same genes")
  expect_error(generation_metrics(sce, sce, condition = "nope"),
               "condition column 'nope' is not among the cell covariates of `real`")
  expect_error(generation_metrics(counts, counts, condition = "cell_type"), "matrix input has none")
  expect_error(generation_metrics(sce, sce, space = "space"), "`space` must be an exprflow_evaluation_space")
  expect_error(generation_metrics(sce, sce, space_fit = "half"), "`space_fit` must be \"cross\" or \"all\"")
})
