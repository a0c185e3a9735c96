# The comparison harness: one call that splits a dataset, fits every model
# and baseline on the same training cells, generates as many cells per
# condition as the held-out set has, and measures everything with the same
# functions, into one tidy table.

#' Compare generative models and baselines on held-out cells
#'
#' Splits `x` into training and held-out (test) cells, stratified by
#' condition, fits each entry of `models` that is a specification (models
#' already fitted are used as given, so they should have been fitted on the
#' same training cells: see `split` in the result), fits the baselines, and
#' for every one of them measures what follows. The baselines are three
#' distributions (independent negative binomials per gene and condition; the
#' same joined by a Gaussian copula, scDesign3's model of gene-gene
#' correlation; a Gaussian in PCA space per condition; see [fit_baseline()])
#' and `state_mlp`, the token-free generative model (a residual MLP on the
#' expression vector trained by flow matching, with package defaults): a
#' model worth its tokens beats all four. Beside them, `training_cells`
#' (kind `"reference"`) draws real training cells: what the data itself
#' scores, the mark a generator approaches (see [fit_baseline()]).
#' * **generation**: as many cells per condition as the test set has,
#'   compared with the test cells by [generation_metrics()];
#' * **embedding** (with a condition): [embedding_metrics()] of the model's
#'   embedding of the test cells against their labels; the `pca_gaussian`
#'   baseline contributes the PCA embedding;
#' * **reconstruction**: for models, [reconstruct_cells()] of the test cells at
#'   `noise_level` scored by [reconstruction_metrics()] plus the mean
#'   reconstruction log-likelihood per cell; for the `independent_nb`
#'   baseline, its held-out log-likelihood per cell (the likelihood of a test
#'   cell knowing only its condition and library size -- a different quantity,
#'   reported under its own name). VAE-based models (`"vae"`, `"latent_*"`)
#'   reconstruct through their VAE: `reconstruction_log_likelihood` is the
#'   likelihood of a held-out cell at the code its encoder reads off the cell,
#'   and `heldout_log_likelihood` its marginal likelihood given its library
#'   size (the code integrated over the prior, see [reconstruct_cells()]),
#'   the quantity to set beside the baseline's;
#' * **cost**: seconds to fit and to generate, and the R process's peak
#'   resident memory while fitting (`fit_peak_mb`, MB; Linux only, NA
#'   elsewhere; it includes what the session already held).
#'
#' @param x A SingleCellExperiment, Seurat object or count matrix (genes x
#'   cells).
#' @param models A named list. Each element is a fitted `exprflow_model`, or a
#'   list of arguments to [fit_expression_model()] (e.g.
#'   `list(architecture = "latent_tokens", epochs = 50, n_layers = 2)`); `x`
#'   and `condition` are supplied by the harness.
#' @param condition `NULL`, a colData column name, or one label per cell.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @param test_fraction Fraction of cells held out (per condition level).
#' @param seed Seed of the split and of every random step downstream.
#' @param baselines Any of `"independent_nb"`, `"nb_copula"`, `"pca_gaussian"`, `"state_mlp"`,
#'   `"training_cells"` (all by default).
#' @param baseline_args Arguments of [fit_expression_model()] for the
#'   `state_mlp` baseline, e.g. `list(state_mlp = list(epochs = 20))`; its
#'   defaults are the package's.
#' @param generate_args Extra arguments of [generate_cells()] for the models
#'   (e.g. `list(steps = 50, guidance_scale = 2)`).
#' @param reconstruct Measure reconstruction.
#' @param noise_level Noise level of [reconstruct_cells()].
#' @param metric_args Extra arguments of [generation_metrics()] (e.g.
#'   `list(n_genes = 1000, n_pcs = 20)`).
#' @param verbose Print progress;
#'   `TRUE` by default in interactive sessions (`interactive()`), as for
#'   every exprflow function with `verbose`.
#' @return A data.frame of class `exprflow_comparison` with columns `model`,
#'   `kind` (`"model"`, `"baseline"` or `"reference"`), `task`, `metric`, `value`,
#'   `lower_is_better`; attributes `split` (the test cells' names),
#'   `real` (the test cells, a SingleCellExperiment) and `generated` (a named
#'   list of generated SingleCellExperiments) for [plot_cells()], and
#'   `fitted` (the named list of fitted models and baselines, e.g. to embed
#'   cells with or save the model without fitting it again). `plot()`
#'   draws the metrics side by side.
#' @examples
#' # A tiny model, trained for one epoch on 400 cells, against one baseline
#' # (a real comparison uses package defaults and all baselines).
#' sce <- example_pbmc()[, 1:400]
#' comparison <- compare_models(
#'   sce, models = list(tiny = list(architecture = "latent_tokens", epochs = 1, n_tokens = 4,
#'                                  token_dim = 16, n_layers = 1, n_heads = 2, hidden = 64)),
#'   condition = "cell_type", baselines = "independent_nb", reconstruct = FALSE,
#'   generate_args = list(steps = 5), metric_args = list(n_genes = 200, n_pcs = 5))
#' comparison
#' plot(comparison)
#' @export
compare_models <- function(x, models = list(), condition = NULL, assay = NULL, test_fraction = 0.25,
                           seed = 1,
                           baselines = c("independent_nb", "nb_copula", "pca_gaussian", "state_mlp",
                                         "training_cells"),
                           baseline_args = list(), generate_args = list(), reconstruct = TRUE, noise_level = 0.5,
                           metric_args = list(), verbose = interactive()) {
  .check_number(test_fraction, "test_fraction", 0, 1)
  if (test_fraction <= 0 || test_fraction >= 1) stop("`test_fraction` must be in (0, 1)", call. = FALSE)
  .check_count(seed, "seed", min = 0)
  if (!is.list(models) || (length(models) && (is.null(names(models)) || any(!nzchar(names(models))) ||
                                              anyDuplicated(names(models))))) {
    stop("`models` must be a list with unique, non-empty names", call. = FALSE)
  }
  if (length(baselines)) {
    baselines <- match.arg(baselines, several.ok = TRUE)  # choices: the default
  }
  clash <- intersect(names(models), c(baselines, "pca"))
  if (length(clash)) {
    stop(sprintf("`models` names %s clash with baselines; rename them", .first_few(clash)), call. = FALSE)
  }
  if (!is.list(baseline_args) || (length(baseline_args) && !all(names(baseline_args) %in% "state_mlp"))) {
    stop("`baseline_args` must be a list with an element `state_mlp` (fit_expression_model() arguments)",
         call. = FALSE)
  }
  if (!length(models) && !length(baselines)) stop("nothing to compare: give `models` and/or `baselines`",
                                                  call. = FALSE)
  if (!is.list(generate_args) || !is.list(metric_args)) {
    stop("`generate_args` and `metric_args` must be lists", call. = FALSE)
  }
  data <- .comparison_data(x, assay, condition)
  column <- data$column
  split <- .stratified_split(data$labels, ncol(data$sce), test_fraction, seed)
  train <- data$sce[, split$train]
  test <- data$sce[, split$test]
  test_levels <- if (is.null(column)) NULL else table(droplevels(test[[column]]))
  say <- function(...) if (isTRUE(verbose)) message(...)

  fit_model <- function(spec) {
    do.call(fit_expression_model, c(list(x = train, condition = column), spec,
                                    if (is.null(spec$seed)) list(seed = seed),
                                    if (is.null(spec$verbose)) list(verbose = FALSE)))
  }
  fitted <- list()
  for (name in names(models)) {
    spec <- models[[name]]
    if (inherits(spec, "exprflow_model")) {
      fitted[[name]] <- list(object = spec, kind = "model", seconds = NA_real_, peak_mb = NA_real_)
      next
    }
    if (!is.list(spec)) {
      stop(sprintf("`models$%s` must be an exprflow_model or a list of fit_expression_model() arguments",
                   name), call. = FALSE)
    }
    say("fitting ", name)
    .peak_resident_mb(reset = TRUE)
    start <- proc.time()[["elapsed"]]
    object <- fit_model(spec)
    fitted[[name]] <- list(object = object, kind = "model", seconds = proc.time()[["elapsed"]] - start,
                           peak_mb = .peak_resident_mb())
  }
  for (type in baselines) {
    say("fitting ", type)
    .peak_resident_mb(reset = TRUE)
    start <- proc.time()[["elapsed"]]
    object <- if (type == "state_mlp") {
      fit_model(c(list(architecture = "state_mlp"), baseline_args$state_mlp))
    } else {
      # Seeded: the PCA baseline's randomised SVD draws from R's RNG, which
      # would otherwise depend on how many models were fitted before it.
      .with_seed(seed, fit_baseline(train, type, condition = column))
    }
    kind <- if (type == "training_cells") "reference" else "baseline"
    fitted[[type]] <- list(object = object, kind = kind, seconds = proc.time()[["elapsed"]] - start,
                           peak_mb = .peak_resident_mb())
  }

  rows <- list()
  generated <- list()
  add <- function(name, kind, task, frame) {
    rows[[length(rows) + 1L]] <<- data.frame(model = name, kind = kind, task = task, metric = frame$metric,
                                             value = frame$value, lower_is_better = frame$lower_is_better,
                                             stringsAsFactors = FALSE)
  }
  for (name in names(fitted)) {
    entry <- fitted[[name]]
    object <- entry$object
    say("measuring ", name)
    start <- proc.time()[["elapsed"]]
    # Sampler settings are the experiment's, shared by every generative model.
    args <- if (inherits(object, "exprflow_model")) generate_args else list()
    cells <- if (is.null(column)) {
      do.call(generate_cells, c(list(object, n = ncol(test), seed = seed), args))
    } else {
      do.call(generate_cells, c(list(object, condition = test_levels[test_levels > 0], seed = seed), args))
    }
    generate_seconds <- proc.time()[["elapsed"]] - start
    generated[[name]] <- cells
    add(name, entry$kind, "generation",
        do.call(generation_metrics, c(list(test, cells, condition = column, seed = seed), metric_args)))

    if (!is.null(column)) {
      embedded <- .comparison_embedding(object, name, test, column, seed)
      if (!is.null(embedded)) add(embedded$name, entry$kind, "embedding", embedded$metrics)
    }
    if (isTRUE(reconstruct)) {
      frame <- .comparison_reconstruction(object, test, column, seed, noise_level, generate_args$steps %||% 50)
      if (!is.null(frame)) add(name, entry$kind, "reconstruction", frame)
    }
    add(name, entry$kind, "cost",
        .metric_frame(c(fit_seconds = entry$seconds, fit_peak_mb = entry$peak_mb,
                        generate_seconds = generate_seconds)))
  }
  result <- do.call(rbind, rows)
  rownames(result) <- NULL
  attr(result, "split") <- colnames(test)
  attr(result, "real") <- test
  attr(result, "generated") <- generated
  attr(result, "fitted") <- lapply(fitted, `[[`, "object")
  attr(result, "condition") <- column
  class(result) <- c("exprflow_comparison", "data.frame")
  result
}

# Embedding metrics of the held-out cells for what has an embedding: a
# list(name, metrics), or NULL. The PCA baseline's row is named "pca".
.comparison_embedding <- function(object, name, test, column, seed) UseMethod(".comparison_embedding")

.comparison_embedding.default <- function(object, name, test, column, seed) NULL

.comparison_embedding.exprflow_model <- function(object, name, test, column, seed) {
  embedding <- embed_cells(object, SingleCellExperiment::counts(test))
  list(name = name, metrics = embedding_metrics(embedding, test[[column]], seed = seed))
}

.comparison_embedding.exprflow_pca_gaussian <- function(object, name, test, column, seed) {
  embedding <- embed_cells(object, SingleCellExperiment::counts(test))
  list(name = "pca", metrics = embedding_metrics(embedding, test[[column]], seed = seed))
}

# Reconstruction metrics and likelihood of the held-out cells, or NULL for
# what cannot reconstruct.
.comparison_reconstruction <- function(object, test, column, seed, noise_level, steps) {
  UseMethod(".comparison_reconstruction")
}

.comparison_reconstruction.default <- function(object, test, column, seed, noise_level, steps) NULL

.comparison_reconstruction.exprflow_model <- function(object, test, column, seed, noise_level, steps) {
  rec <- reconstruct_cells(object, test, condition = column, noise_level = noise_level, seed = seed,
                           steps = steps, importance_samples = 100)
  frame <- reconstruction_metrics(SingleCellExperiment::counts(test),
                                  SummarizedExperiment::assay(rec, "reconstructed"))
  # A VAE's marginal likelihood of a held-out cell (its code integrated over
  # the prior, not read off the cell) is the same kind of quantity as the NB
  # baseline's held-out likelihood: named alike. The likelihood at the
  # cell's own code is a reconstruction's.
  likelihoods <- c(reconstruction_log_likelihood = mean(rec$log_likelihood))
  if (!is.null(rec$marginal_log_likelihood)) {
    likelihoods <- c(heldout_log_likelihood = mean(rec$marginal_log_likelihood), likelihoods)
  }
  rbind(frame, .metric_frame(likelihoods))
}

.comparison_reconstruction.exprflow_independent_nb <- function(object, test, column, seed, noise_level, steps) {
  .metric_frame(c(heldout_log_likelihood = mean(baseline_log_likelihood(object, test, condition = column))))
}

# The input as a SingleCellExperiment of counts whose colData holds the
# condition (under its column name, or "condition" for labels given per cell).
.comparison_data <- function(x, assay, condition) {
  parts <- .counts_and_covariates(x, assay)
  counts <- parts$counts
  .check_gene_names(rownames(counts), "x")
  if (is.null(colnames(counts))) colnames(counts) <- paste0("cell_", seq_len(ncol(counts)))
  labels <- .resolve_condition(condition, parts$covariates, ncol(counts))
  column <- NULL
  col_data <- S4Vectors::DataFrame(row.names = colnames(counts))
  if (!is.null(labels)) {
    column <- if (is.character(condition) && length(condition) == 1L) condition else "condition"
    col_data[[column]] <- labels
  }
  sce <- SingleCellExperiment::SingleCellExperiment(list(counts = counts), colData = col_data)
  list(sce = sce, labels = labels, column = column)
}

# Seeded split holding out `fraction` of each level (at least one cell of
# every level with two or more cells stays on each side).
.stratified_split <- function(labels, n, fraction, seed) {
  groups <- if (is.null(labels)) list(seq_len(n)) else split(seq_len(n), labels)
  test <- .with_seed(seed, unlist(lapply(groups, function(cells) {
    if (length(cells) < 2L) return(integer(0))
    k <- min(max(1L, round(fraction * length(cells))), length(cells) - 1L)
    cells[sample.int(length(cells), k)]
  }), use.names = FALSE))
  test <- sort(test)
  list(train = setdiff(seq_len(n), test), test = test)
}

#' @export
print.exprflow_comparison <- function(x, ...) {
  frame <- as.data.frame(unclass(x), stringsAsFactors = FALSE)
  attr(frame, "real") <- attr(frame, "generated") <- attr(frame, "fitted") <- attr(frame, "split") <-
    attr(frame, "condition") <- NULL
  cat("<exprflow_comparison> ", length(unique(frame$model)), " models, ", length(attr(x, "split")),
      " held-out cells\n", sep = "")
  frame$better <- ifelse(is.na(frame$lower_is_better), "", ifelse(frame$lower_is_better, "lower", "higher"))
  wide <- stats::reshape(frame[, c("model", "task", "metric", "better", "value")],
                         idvar = c("task", "metric", "better"), timevar = "model", direction = "wide")
  names(wide) <- sub("^value\\.", "", names(wide))
  tasks <- c("generation", "embedding", "reconstruction", "cost")
  wide <- wide[order(match(wide$task, tasks)), , drop = FALSE]
  rownames(wide) <- NULL
  print(wide, digits = 3, row.names = FALSE)
  invisible(x)
}

#' @rdname compare_models
#' @param tasks Which tasks to plot. `plot()` draws one chart: metrics as
#'   rows (arrows give their direction), grouped by task, models and
#'   baselines as columns, each cell its value, coloured by its rank within
#'   the row (best dark, worst light; the `training_cells` reference is not
#'   ranked, grey); `print()` gives the same as a table.
#' @param metrics Which metrics to plot (default: all of the chosen tasks).
#' @param ... Unused.
#' @export
plot.exprflow_comparison <- function(x, tasks = c("generation", "embedding", "reconstruction"),
                                     metrics = NULL, ...) {
  frame <- as.data.frame(unclass(x), stringsAsFactors = FALSE)[, c("model", "kind", "task", "metric", "value",
                                                                    "lower_is_better")]
  frame <- frame[frame$task %in% tasks & is.finite(frame$value) & !grepl("_dropped$", frame$metric), ]
  if (!is.null(metrics)) frame <- frame[frame$metric %in% metrics, ]
  if (!nrow(frame)) stop("no metric left to plot; check `tasks` and `metrics`", call. = FALSE)
  # Colour ranks the competitors; the real cells' reference keeps its value
  # but no rank (grey).
  frame$score <- NA_real_
  competing <- frame$kind != "reference"
  frame$score[competing] <- .metric_scores(frame[competing, , drop = FALSE])
  # Rows: metrics (named with their direction), grouped by task; columns:
  # models, then baselines, then the reference.
  frame$row <- paste(frame$metric, ifelse(is.na(frame$lower_is_better), "",
                                          ifelse(frame$lower_is_better, "\u2193", "\u2191")))
  frame$row <- factor(frame$row, levels = rev(unique(frame$row)))
  frame$task <- factor(frame$task, levels = intersect(tasks, unique(frame$task)))
  frame$kind <- factor(c(model = "models", baseline = "baselines", reference = "reference")[frame$kind],
                       levels = c("models", "baselines", "reference"))
  frame$model <- factor(frame$model, levels = unique(frame$model))
  frame$text <- formatC(frame$value, digits = 3, format = "g")
  ggplot2::ggplot(frame, ggplot2::aes(x = .data$model, y = .data$row, fill = .data$score)) +
    ggplot2::geom_tile(colour = "white") +
    ggplot2::geom_text(ggplot2::aes(label = .data$text), size = 2.6) +
    ggplot2::facet_grid(task ~ kind, scales = "free", space = "free") +
    ggplot2::scale_fill_gradient(low = "#f7f7f7", high = "#4393c3", limits = c(0, 1), na.value = "grey90",
                                 breaks = c(0, 1), labels = c("worst", "best")) +
    ggplot2::labs(x = NULL, y = NULL, fill = "per metric",
                  title = "Models and baselines on held-out cells",
                  subtitle = "\u2193 lower is better, \u2191 higher is better; colour ranks each row") +
    ggplot2::theme_minimal(base_size = 9) +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 30, hjust = 1), panel.grid = ggplot2::element_blank(),
                   strip.text.y = ggplot2::element_text(angle = 0))
}

# Each value scaled within its metric to [0, 1], 1 the best (direction from
# lower_is_better); NA for metrics without a direction; 0.5 when all agree.
.metric_scores <- function(frame) {
  score <- rep(NA_real_, nrow(frame))
  for (rows in split(seq_len(nrow(frame)), frame$metric)) {
    lower <- frame$lower_is_better[rows[1]]
    if (is.na(lower)) next
    v <- frame$value[rows]
    span <- max(v) - min(v)
    scaled <- if (span > 0) (v - min(v)) / span else rep(0.5, length(v))
    score[rows] <- if (lower) 1 - scaled else scaled
  }
  score
}
