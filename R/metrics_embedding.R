# Evaluation metrics: embeddings (label transfer, clustering agreement).
# (Metric names and directions: R/metrics_table.R.)

#' Adjusted Rand index and normalised mutual information of two partitions
#'
#' `adjusted_rand_index()` is the Hubert-Arabie ARI computed from the
#' contingency table (1 for identical partitions, about 0 for independent
#' ones; two identical trivial partitions give 1).
#' `normalized_mutual_information()` is the mutual information divided by
#' the arithmetic mean of the two entropies, `2 I(a, b) / (H(a) + H(b))`
#' (natural logarithms; 1 for identical partitions, 0 for independent ones;
#' two single-cluster partitions give 1).
#'
#' @param a,b Cluster labels of the same cells (vectors or factors of equal
#'   length, at least 2, no `NA`).
#' @return One number.
#' @examples
#' a <- rep(1:3, each = 10)
#' adjusted_rand_index(a, a)
#' normalized_mutual_information(a, rev(a))
#' @export
adjusted_rand_index <- function(a, b) {
  table <- .contingency(a, b)
  pairs <- function(n) sum(n * (n - 1) / 2)
  n <- sum(table)
  index <- pairs(table)
  a_pairs <- pairs(rowSums(table))
  b_pairs <- pairs(colSums(table))
  expected <- a_pairs * b_pairs / (n * (n - 1) / 2)
  maximum <- (a_pairs + b_pairs) / 2
  # Equal only when both partitions are one cluster or both all singletons.
  if (maximum == expected) return(1)
  (index - expected) / (maximum - expected)
}

#' @rdname adjusted_rand_index
#' @export
normalized_mutual_information <- function(a, b) {
  table <- .contingency(a, b)
  p <- table / sum(table)
  pa <- rowSums(p)
  pb <- colSums(p)
  entropy <- function(q) -sum(q[q > 0] * log(q[q > 0]))
  nonzero <- p > 0
  mutual <- sum(p[nonzero] * log(p[nonzero] / outer(pa, pb)[nonzero]))
  denominator <- (entropy(pa) + entropy(pb)) / 2
  if (denominator == 0) return(1)
  min(max(mutual / denominator, 0), 1)
}

.contingency <- function(a, b) {
  for (arg in c("a", "b")) {
    value <- get(arg)
    if (is.null(value) || (!is.atomic(value) && !is.factor(value)) || is.list(value)) {
      stop(sprintf("`%s` must be a vector of cluster labels", arg), call. = FALSE)
    }
    if (anyNA(value)) {
      stop(sprintf("`%s` has %d missing (NA) labels", arg, sum(is.na(value))), call. = FALSE)
    }
  }
  if (length(a) != length(b)) {
    stop(sprintf("`a` and `b` must have the same length; got %d and %d", length(a), length(b)),
         call. = FALSE)
  }
  if (length(a) < 2L) stop("`a` and `b` need at least 2 labels", call. = FALSE)
  unclass(table(as.character(a), as.character(b)))
}

#' How well an embedding separates known labels
#'
#' Metrics of a cell embedding against known labels (e.g. cell types):
#' * `knn_accuracy`: cross-validated kNN label transfer (`folds` folds,
#'   stratified by label, seeded; majority vote of the `k` nearest training
#'   cells) - the fraction of cells given their own label;
#' * `knn_balanced_accuracy`: the same, averaged over labels (rare labels
#'   count as much as common ones);
#' * `silhouette`: mean silhouette width of the labels
#'   ([cluster::silhouette()] on Euclidean distances of a seeded subsample of
#'   at most `max_cells` cells);
#' * `kmeans_ari`, `kmeans_nmi`: [adjusted_rand_index()] and
#'   [normalized_mutual_information()] between the labels and a k-means
#'   clustering with as many centres as labels (`nstart = 10`, seeded).
#' Higher is better for all of them.
#'
#' @param embedding Cells x dimensions matrix, or a SingleCellExperiment or
#'   Seurat object holding the embedding `dimred` (as [embed_cells()] stores
#'   it).
#' @param labels One label per cell (at least 2 distinct labels), or, with
#'   a SingleCellExperiment or Seurat `embedding`, the name of the colData /
#'   meta.data column holding them.
#' @param k Number of neighbours.
#' @param seed Seed of the folds, the subsample and k-means.
#' @param folds Number of cross-validation folds.
#' @param max_cells Largest number of cells in the silhouette computation.
#' @param dimred For a SingleCellExperiment or Seurat `embedding`, the name
#'   of the embedding (a reducedDim, or a DimReduc in lower case;
#'   [embed_cells()]'s default name). An error for a matrix.
#' @return A data.frame with columns `metric`, `value` and `lower_is_better`
#'   (all `FALSE`).
#' @examples
#' sce <- example_pbmc()
#' space <- evaluation_space(sce, n_genes = 500, n_pcs = 10)
#' embedding_metrics(project_cells(space, sce), sce$cell_type)
#' # An embedding stored in the cells' object, labels from a colData column:
#' SingleCellExperiment::reducedDim(sce, "PCA") <- project_cells(space, sce)
#' embedding_metrics(sce, "cell_type", dimred = "PCA")
#' @export
embedding_metrics <- function(embedding, labels, k = 15, seed = 1, folds = 5, max_cells = 3000,
                              dimred = "EXPRFLOW") {
  if (methods::is(embedding, "SingleCellExperiment") || methods::is(embedding, "Seurat")) {
    stored <- .stored_embedding(embedding, dimred, "embedding")
    embedding <- stored$embedding
    if (.is_column_name(labels, stored$covariates, nrow(embedding))) {
      labels <- .resolve_condition(labels, stored$covariates, nrow(embedding), arg = "labels")
    }
  } else if (!missing(dimred)) {
    stop("`dimred` names an embedding of a SingleCellExperiment or Seurat `embedding`, not of a matrix",
         call. = FALSE)
  }
  k <- .check_count(k, "k", min = 1)
  folds <- .check_count(folds, "folds", min = 2)
  seed <- .check_count(seed, "seed", min = 0)
  max_cells <- .check_count(max_cells, "max_cells", min = 3)
  embedding <- .check_points(embedding, "embedding", min_rows = max(k + 1L, folds))
  labels <- .check_labels(labels, nrow(embedding), "labels", "embedding")
  n_labels <- length(unique(labels))
  if (n_labels < 2L) stop("`labels` must have at least 2 distinct labels", call. = FALSE)
  .with_seed(seed, {
    fold <- .stratified_folds(labels, folds)
    predicted <- character(length(labels))
    for (f in seq_len(folds)) {
      test <- fold == f
      if (!any(test)) next
      predicted[test] <- .knn_vote(embedding[!test, , drop = FALSE], labels[!test],
                                   embedding[test, , drop = FALSE], k)
    }
    correct <- predicted == labels
    sample_rows <- if (nrow(embedding) > max_cells) sort(sample.int(nrow(embedding), max_cells)) else
      seq_len(nrow(embedding))
    sample_labels <- labels[sample_rows]
    silhouette <- if (length(unique(sample_labels)) < 2L) NA_real_ else {
      widths <- cluster::silhouette(as.integer(factor(sample_labels)),
                                    stats::dist(embedding[sample_rows, , drop = FALSE]))
      mean(widths[, "sil_width"])
    }
    distinct_points <- nrow(unique(embedding))
    clusters <- if (distinct_points < n_labels) NULL else
      stats::kmeans(embedding, centers = n_labels, nstart = 10, iter.max = 100)$cluster
    .metric_frame(c(
      knn_accuracy = mean(correct), knn_balanced_accuracy = mean(tapply(correct, labels, mean)),
      silhouette = silhouette,
      kmeans_ari = if (is.null(clusters)) NA_real_ else adjusted_rand_index(labels, clusters),
      kmeans_nmi = if (is.null(clusters)) NA_real_ else normalized_mutual_information(labels, clusters)))
  })
}
