# Every metric exprflow reports, declared once with its direction: TRUE when
# lower is better, FALSE when higher is better, NA for counts that have no
# direction (cells or genes left out of a correlation). The metric functions
# build their results with .metric_frame(), so a name missing here is an
# error, and compare_models(), its print() and plot() read the direction
# from the result.

.reconstruction_correlations <- function() {
  grid <- expand.grid(statistic = c("median", "mean", "dropped"), scale = c("log", "counts"),
                      axis = c("cell", "gene"), stringsAsFactors = FALSE)
  stats::setNames(ifelse(grid$statistic == "dropped", NA, FALSE),
                  sprintf("%s_pearson_%s_%s", grid$axis, grid$scale, grid$statistic))
}

.metric_directions <- c(
  # generation_metrics(): distribution distances in the evaluation space ...
  mmd_rbf = TRUE, energy_distance = TRUE, wasserstein_1 = TRUE, wasserstein_2 = TRUE, knn_auc = TRUE,
  precision = FALSE, recall = FALSE, density = FALSE, coverage = FALSE,
  # ... gene-level agreement on counts ...
  mean_pearson = FALSE, mean_spearman = FALSE, variance_pearson = FALSE, variance_spearman = FALSE,
  zero_fraction_pearson = FALSE, zero_fraction_spearman = FALSE,
  library_size_ks = TRUE, library_size_w1 = TRUE, correlation_matrix_distance = TRUE,
  # ... and whether cells look like their condition.
  condition_accuracy = FALSE,
  # perturbation_metrics() (beside energy_distance and mmd_rbf above)
  pearson_mean = FALSE, r2_mean = FALSE, pearson_mean_deg = FALSE, r2_mean_deg = FALSE,
  pearson_delta = FALSE, pearson_delta_deg = FALSE, deg_overlap = FALSE,
  # embedding_metrics()
  knn_accuracy = FALSE, knn_balanced_accuracy = FALSE, silhouette = FALSE, kmeans_ari = FALSE,
  kmeans_nmi = FALSE,
  # reconstruction_metrics() and the likelihoods compare_models() adds
  .reconstruction_correlations(),
  heldout_log_likelihood = FALSE, reconstruction_log_likelihood = FALSE,
  # compare_models() costs
  fit_seconds = TRUE, fit_peak_mb = TRUE, generate_seconds = TRUE
)

# A metric result: one row per named value, with its declared direction.
.metric_frame <- function(values) {
  unknown <- setdiff(names(values), names(.metric_directions))
  if (length(unknown)) stop("internal: metric(s) without a declared direction: ", paste(unknown, collapse = ", "))
  data.frame(metric = names(values), value = unname(as.numeric(values)),
             lower_is_better = unname(.metric_directions[names(values)]), stringsAsFactors = FALSE)
}
