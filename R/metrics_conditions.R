# Evaluation metrics: condition accuracy of generated cells.
# (Metric names and directions: R/metrics_table.R.)

#' Do generated cells look like the condition they were generated for?
#'
#' A kNN classifier (majority vote of the `k` nearest real cells, Euclidean;
#' ties go to the label with the nearer neighbours) trained on the labelled
#' REAL cells predicts the label of each generated cell; the result is the
#' fraction predicted as the condition the cell was generated for. Use the
#' embeddings of an [evaluation_space()].
#'
#' @param real_embedding Real cells (cells x dimensions).
#' @param real_labels One label per real cell.
#' @param generated_embedding Generated cells (cells x dimensions).
#' @param generated_labels The condition each generated cell was generated
#'   for; every label must occur among `real_labels`.
#' @param k Number of neighbours; `real_embedding` needs at least `k` cells.
#' @return The accuracy (a number in \[0, 1\]) with attributes `per_label`
#'   (accuracy per generated label) and `n_per_label` (generated cells per
#'   label), both named numeric vectors.
#' @examples
#' set.seed(1)
#' real <- rbind(matrix(rnorm(200), ncol = 2), matrix(rnorm(200, 5), ncol = 2))
#' labels <- rep(c("a", "b"), each = 100)
#' condition_accuracy(real, labels, real + rnorm(400, sd = 0.1), labels)
#' @export
condition_accuracy <- function(real_embedding, real_labels, generated_embedding, generated_labels,
                               k = 15) {
  k <- .check_count(k, "k", min = 1)
  real_embedding <- .check_points(real_embedding, "real_embedding", min_rows = k)
  generated_embedding <- .check_points(generated_embedding, "generated_embedding", min_rows = 1L)
  .check_same_dims(real_embedding, generated_embedding, "real_embedding", "generated_embedding")
  real_labels <- .check_labels(real_labels, nrow(real_embedding), "real_labels", "real_embedding")
  generated_labels <- .check_labels(generated_labels, nrow(generated_embedding),
                                    "generated_labels", "generated_embedding")
  unseen <- setdiff(generated_labels, real_labels)
  if (length(unseen)) {
    stop(sprintf("`generated_labels` has %d labels absent from `real_labels` (%s)", length(unseen),
                 .first_few(unseen)), call. = FALSE)
  }
  predicted <- .knn_vote(real_embedding, real_labels, generated_embedding, k)
  correct <- predicted == generated_labels
  label_factor <- factor(generated_labels)
  per_label <- tapply(correct, label_factor, mean)
  structure(mean(correct), per_label = stats::setNames(as.numeric(per_label), names(per_label)),
            n_per_label = stats::setNames(as.numeric(table(label_factor)), levels(label_factor)))
}
