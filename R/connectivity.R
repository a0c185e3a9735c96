# Connectivity models, user side: fit a model that predicts the connectivity
# of a pair of brain regions from their gene expression, predict the full
# region x region matrix, look at attention maps, save / load, and
# cross-validate over regions without leakage.
#
# Neural models and the bilinear baseline live in C++ (src/core/connectivity,
# glue in src/r_connectivity.cpp); the other baselines are base R
# (R/connectivity_baselines.R). A fit is an "exprflow_connectivity" list; for
# a C++ model (.cpp_backed()) its state sits behind an external pointer in an
# environment, as for exprflow_model (R/models.R).

#' Connectivity models exprflow can fit
#'
#' @return A character vector: the neural models (`"cross_attention"`, the
#'   seed design; `"self_attention_chunks"`, `"self_attention_chunks_pooled"`,
#'   `"gene_self_attention"`, its comparison models) followed by the baselines
#'   `"cge_linear"`, `"distance_decay"` and `"bilinear"`.
#' @examples
#' connectivity_models()
#' @export
connectivity_models <- function() {
  # The C++ registry also holds the bilinear baseline: list it with the baselines.
  c(setdiff(.cpp_connectivity_architectures(), .baseline_models), .baseline_models)
}

#' Default settings of a connectivity model
#'
#' @param model One of [connectivity_models()].
#' @return A list with `spec` (the model's settings; any of them can be
#'   passed to [fit_connectivity()] through `...`) and, for neural models and
#'   `"bilinear"`, `training` (the default training options: `epochs`,
#'   `batch_size`, `learning_rate` and `patience` are arguments of
#'   [fit_connectivity()], the rest go in its `training`). The bilinear
#'   baseline has its own (full-batch Adam steps, learning rate 0.01, no
#'   weight decay).
#' @examples
#' str(connectivity_defaults("cross_attention")$spec)
#' connectivity_defaults("bilinear")
#' @export
connectivity_defaults <- function(model = "cross_attention") {
  .check_model_name(model)
  if (model %in% .r_baseline_models) return(list(spec = .baseline_defaults[[model]]))
  list(spec = .cpp_connectivity_default_spec(model), training = .cpp_connectivity_default_train_options(model))
}

.check_model_name <- function(model, arg = "model") {
  .check_string(model, arg)
  valid <- connectivity_models()
  if (!model %in% valid) {
    stop(sprintf("`%s`: unknown connectivity model '%s'; valid: %s", arg, model, .first_few(valid, 20L)),
         call. = FALSE)
  }
  invisible(model)
}

# Original region numbers from numbers, labels or a logical vector.
.region_numbers <- function(regions, labels, arg) {
  n <- length(labels)
  if (is.logical(regions)) {
    if (length(regions) != n || anyNA(regions)) {
      stop(sprintf("`%s`: a logical vector must have one non-NA value per region (%d)", arg, n), call. = FALSE)
    }
    return(which(regions))
  }
  if (is.character(regions)) {
    hit <- match(regions, labels)
    if (anyNA(hit)) {
      stop(sprintf("`%s`: unknown region label(s) %s", arg, .first_few(regions[is.na(hit)])), call. = FALSE)
    }
    return(unique(hit))
  }
  if (is.numeric(regions) && !anyNA(regions) && all(regions == round(regions)) &&
      all(regions >= 1 & regions <= n)) {
    return(unique(as.integer(regions)))
  }
  stop(sprintf("`%s` must hold region numbers in 1..%d, region labels or a logical vector", arg, n),
       call. = FALSE)
}

# Gene vectors aligned to `genes`; applies `missing_genes`.
.gene_embedding_for <- function(genes, gene2vec, missing_genes, default_dim) {
  if (is.null(gene2vec)) {
    message(sprintf("no `gene2vec` given: all %d genes get a learned vector", length(genes)))
    return(list(embedding = matrix(NA_real_, length(genes), default_dim, dimnames = list(genes, NULL)),
                genes = genes, n_missing = length(genes)))
  }
  if (is.data.frame(gene2vec)) gene2vec <- as.matrix(gene2vec)
  if (!is.matrix(gene2vec) || !is.numeric(gene2vec) || is.null(rownames(gene2vec)) || ncol(gene2vec) < 1L) {
    stop("`gene2vec` must be a numeric matrix genes x dim with gene rownames (see read_gene2vec())",
         call. = FALSE)
  }
  hit <- match(genes, rownames(gene2vec))
  emb <- matrix(NA_real_, length(genes), ncol(gene2vec), dimnames = list(genes, NULL))
  emb[!is.na(hit), ] <- gene2vec[hit[!is.na(hit)], , drop = FALSE]
  has <- rowSums(!is.finite(emb)) == 0
  emb[!has, ] <- NA_real_
  if (missing_genes == "drop") {
    if (!any(has)) stop("`gene2vec` has a vector for none of the genes of `expression`", call. = FALSE)
    message(sprintf("gene2vec: %d of %d genes have a vector; %d without one are dropped", sum(has),
                    length(genes), sum(!has)))
    return(list(embedding = emb[has, , drop = FALSE], genes = genes[has], n_missing = 0L,
                n_dropped = sum(!has)))
  }
  message(sprintf("gene2vec: %d of %d genes have a vector; %d get a learned vector", sum(has),
                  length(genes), sum(!has)))
  list(embedding = emb, genes = genes, n_missing = sum(!has), n_dropped = 0L)
}

.coords_arg <- function(coords) if (is.null(coords)) matrix(numeric(), 0L, 3L) else coords

#' Fit a model of brain connectivity from regional gene expression
#'
#' Learns to predict the connectivity of an ordered pair of regions `(i, j)`
#' from the gene expression of the two regions (see [connectivity_pairs()] for
#' how pairs are built: regions with no expression are dropped, expression is
#' scaled to \[0, 1\]).
#'
#' Neural models (C++/LibTorch):
#' * `"cross_attention"` (the seed design): each region's genes are tokens
#'   (expression put into `n_bins` bins, one-hot -> linear -> the gene
#'   embedding width, plus the gene's vector, projected to `d_model`); a CLS
#'   token (`cls = "random"` or `"spatial"`, from the two regions'
#'   coordinates) and the genes of region i attend to the genes of region j
#'   over `n_layers` layers; the tokens are pooled (`pooling = "mean"`,
#'   `"attention"` or `"cls"`) and an MLP head gives the prediction.
#' * comparison models: `"self_attention_chunks"` (shared self-attention over
#'   gene chunks of each region, flattened), `"self_attention_chunks_pooled"`
#'   (the same with attention pooling), `"gene_self_attention"` (single-gene
#'   tokens with self-attention and attention pooling).
#'
#' See [connectivity_defaults()] for every setting. Training uses AdamW on the
#' mean squared error, minibatches of pairs, and early stopping on validation
#' pairs; the best epoch's weights are kept.
#'
#' Baselines: `"cge_linear"` (linear fit on the correlation of the two
#' regions' expression profiles), `"distance_decay"` (`a + b exp(-d / lambda)`
#' of the centroid distance; needs `coords`, ignores expression), both fitted
#' in base R, and `"bilinear"`: `c + z_i' W z_j` on the standardised
#' expression profiles (`z`: centred per gene and divided by one overall sd,
#' both from the training regions; the target standardised too) with a
#' low-rank `W`. Its settings: `rank` (8; `W` has rank `<= 2 * rank`),
#' `lambda` (ridge penalty on the factors of `W`, 1e-3), `symmetric` (`TRUE`:
#' `W = U V' + V U'`, so `f(i, j) = f(j, i)`; `FALSE`: `W = U V'`). It is a
#' small C++ network trained by the same trainer as the neural models, with
#' its own training defaults (see `connectivity_defaults("bilinear")`):
#' full-batch Adam (one step per epoch for up to 16,384 pairs), `epochs`
#' 1500 (`iterations` is another name for it), `learning_rate` 0.01, no
#' weight decay, and `patience` 1500: the run is not stopped early, the
#' epoch with the best validation loss is kept. It ignores `gene2vec`.
#'
#' **Which pairs train.** Training pairs have both regions in `train_regions`.
#' A seeded `validation_fraction` of the training regions is held out:
#' validation pairs (for early stopping) are pairs of training regions with at
#' least one held-out region, and they are not trained on (except by
#' `cge_linear` and `distance_decay`, which have nothing to stop early and fit
#' on all pairs of training regions). Regions outside `train_regions` play no
#' part in fitting, not even through the \[0, 1\] scaling (learned on the
#' training regions when the data are not already in \[0, 1\]).
#'
#' @param expression Numeric matrix, regions x genes, gene colnames; rows that
#'   are entirely `NA` are regions without measurements (dropped).
#' @param connectivity Numeric region x region matrix, same region order;
#'   `NA` entries are not used.
#' @param coords Optional regions x 3 coordinates (needed by
#'   `"distance_decay"` and the spatial CLS token).
#' @param gene2vec Gene vectors: a genes x dim matrix with gene rownames, from
#'   [read_gene2vec()], [gene_embeddings_coexpression()] or
#'   [gene_embeddings_gene_sets()]; `NULL`: every gene's vector is learned.
#'   Not used by the baselines.
#' @param model One of [connectivity_models()].
#' @param train_regions Regions whose pairs may train: region numbers,
#'   labels (rownames of `expression`) or a logical vector; default all.
#' @param missing_genes Genes of `expression` without a vector in `gene2vec`:
#'   `"learn"` a vector for them or `"drop"` them (a message says how many).
#' @param epochs Maximum epochs (`NULL`: the model's default training option,
#'   100 for neural models, 1500 for `"bilinear"`).
#' @param batch_size Pairs per optimiser step (`NULL`: the model's default,
#'   512; `"bilinear"`: 16384).
#' @param learning_rate Peak AdamW learning rate (`NULL`: the model's
#'   default, 1e-3; `"bilinear"`: 0.01).
#' @param validation_fraction Fraction of training regions held out for early
#'   stopping (0: none).
#' @param patience Epochs without validation improvement before stopping
#'   (`NULL`: the model's default, 10; `"bilinear"`: 1500).
#' @param seed Seed of the weights, batches, dropout and region split.
#' @param verbose Show a progress bar (steps, epoch, training loss, last
#'   validation loss);
#'   `TRUE` by default in interactive sessions (`interactive()`), as for
#'   every exprflow function with `verbose`.
#' @param ... Model settings overriding the defaults of
#'   [connectivity_defaults()], e.g. `d_model = 64, n_layers = 2,
#'   pooling = "attention", cls = "spatial"`; unknown settings are an error.
#' @param training Further training options of the C++ trainer (see
#'   `connectivity_defaults(model)$training`), e.g. a cosine schedule.
#'
#' The training arguments (`epochs`, `batch_size`, `learning_rate`,
#' `patience`, `training`) do not apply to `"cge_linear"` and
#' `"distance_decay"`, which have no training loop.
#' @return An `exprflow_connectivity` object: use it with
#'   [predict_connectivity()], [connectivity_attention()],
#'   [save_connectivity()]. Its elements include `history` (per-epoch losses),
#'   `train_seconds`, `genes`, `region_index`, `train_regions`,
#'   `validation_regions` and `train_pairs` (the original region numbers of
#'   every pair used in fitting, training and validation).
#' @examples
#' brain <- example_brain("fc")
#' fit <- fit_connectivity(brain$expression, brain$connectivity, brain$coords,
#'                         model = "distance_decay")
#' fit
#' nn <- fit_connectivity(brain$expression, brain$connectivity, brain$coords,
#'                        epochs = 1, d_model = 16, n_layers = 1, n_heads = 2)
#' @export
fit_connectivity <- function(expression, connectivity, coords = NULL, gene2vec = NULL,
                             model = "cross_attention", train_regions = NULL,
                             missing_genes = c("learn", "drop"), epochs = NULL, batch_size = NULL,
                             learning_rate = NULL, validation_fraction = 0.1, patience = NULL, seed = 1,
                             verbose = interactive(), ..., training = list()) {
  .check_model_name(model)
  missing_genes <- match.arg(missing_genes)
  # Checked as for expression models (the connectivity trainer takes no validation_fraction: the split is here).
  .training_options(epochs, batch_size, learning_rate, validation_fraction, patience, seed, training)
  settings <- list(...)
  if (length(settings) && (is.null(names(settings)) || any(!nzchar(names(settings))))) {
    stop("model settings in `...` must be named (e.g. d_model = 64)", call. = FALSE)
  }
  inputs <- .check_region_inputs(expression, connectivity, coords)
  n <- nrow(inputs$expression)
  labels <- rownames(inputs$expression) %||% as.character(seq_len(n))
  train_numbers <- if (is.null(train_regions)) seq_len(n) else .region_numbers(train_regions, labels, "train_regions")
  pairs <- .region_pairs(inputs$expression, inputs$connectivity, inputs$coords, reference = train_numbers)
  if (model == "distance_decay" && is.null(pairs$coords)) {
    stop("model 'distance_decay' needs region coordinates: pass `coords`", call. = FALSE)
  }

  # Training regions as rows of the kept regions; a seeded share of them
  # validates. Pairs touching a region outside them are never used.
  train_rows <- which(pairs$region_index %in% train_numbers)
  if (length(train_rows) < 2L) stop("`train_regions`: fewer than 2 training regions have expression", call. = FALSE)
  n_val <- if (validation_fraction > 0) max(1L, round(validation_fraction * length(train_rows))) else 0L
  if (length(train_rows) - n_val < 2L) n_val <- 0L
  val_rows <- if (n_val) .with_seed(seed, sort(train_rows[sample.int(length(train_rows), n_val)])) else integer()
  in_train <- pairs$i %in% train_rows & pairs$j %in% train_rows
  is_val <- in_train & (pairs$i %in% val_rows | pairs$j %in% val_rows)
  fit_pairs <- in_train & !is_val
  if (!any(fit_pairs)) stop("no training pairs: every pair has a region outside `train_regions`", call. = FALSE)

  if (model %in% .r_baseline_models) {
    # Nothing to stop early: these fit on every pair of training regions.
    val_rows <- integer()
    is_val <- rep(FALSE, length(in_train))
    fit_pairs <- in_train
  }
  fit <- list(model = model, region_index = pairs$region_index, n_regions = n, labels = labels,
              coords_all = inputs$coords, scaling = pairs$scaling,
              train_regions = pairs$region_index[train_rows], validation_regions = pairs$region_index[val_rows],
              train_pairs = cbind(i = pairs$region_index[pairs$i[in_train]], j = pairs$region_index[pairs$j[in_train]]),
              n_train_pairs = sum(fit_pairs), n_validation_pairs = sum(is_val))
  started <- proc.time()[["elapsed"]]
  if (model %in% .r_baseline_models) {
    fit$baseline <- .fit_pair_baseline_model(model, pairs$expression, pairs$coords, pairs$i[fit_pairs], pairs$j[fit_pairs],
                                  pairs$target[fit_pairs], settings)
    fit$genes <- pairs$genes
    fit$expression <- pairs$expression
    fit$coords <- pairs$coords
    fit$history <- NULL
    fit$parameters <- switch(model, cge_linear = 2L, distance_decay = 3L)
  } else {
    if (model == "bilinear") {
      # No gene vectors: the embedding only fixes the gene count (one column, all "learned", unused).
      mapped <- .bilinear_settings(settings, epochs)
      settings <- mapped$spec
      epochs <- mapped$epochs
      emb <- list(embedding = matrix(NA_real_, length(pairs$genes), 1L, dimnames = list(pairs$genes, NULL)),
                  genes = pairs$genes, n_dropped = 0L)
    } else {
      defaults <- .cpp_connectivity_default_spec(model)
      default_dim <- defaults$gene_embedding_dim %||% defaults$embedding_dim %||% defaults$gene_dim %||% 200L
      emb <- .gene_embedding_for(pairs$genes, gene2vec, missing_genes, as.integer(default_dim))
    }
    expr <- pairs$expression[, emb$genes, drop = FALSE]
    spec <- c(list(architecture = model), settings)
    if (is.null(spec$seed)) spec$seed <- seed
    pointer <- .cpp_connectivity_create(spec, emb$embedding)
    given <- list(epochs = epochs, batch_size = batch_size, learning_rate = learning_rate, patience = patience)
    options <- utils::modifyList(.cpp_connectivity_default_train_options(model),
                                 c(Filter(Negate(is.null), given), list(seed = seed), training))
    progress <- .training_progress(verbose, environment())
    report <- .cpp_connectivity_train(pointer, expr, .coords_arg(pairs$coords),
                                      pairs$i[fit_pairs], pairs$j[fit_pairs], pairs$target[fit_pairs],
                                      pairs$i[is_val], pairs$j[is_val], pairs$target[is_val],
                                      options, progress)
    if (isTRUE(report$interrupted)) {
      warning(sprintf("training was interrupted after %d steps; returning the model trained so far",
                      as.integer(report$steps)), call. = FALSE)
    }
    info <- .cpp_connectivity_info(pointer)
    fit$state <- .connectivity_state(pointer)
    fit$spec <- info$spec
    fit$genes <- emb$genes
    if (model != "bilinear") {
      fit$gene_has_vector <- stats::setNames(rowSums(is.na(emb$embedding)) == 0, emb$genes)
      fit$n_genes_dropped <- emb$n_dropped %||% 0L
    }
    fit$expression <- expr
    fit$coords <- pairs$coords
    fit$history <- report$history
    fit$stopped_early <- isTRUE(report$stopped_early)
    fit$best_epoch <- report$best_epoch
    fit$interrupted <- isTRUE(report$interrupted)
    fit$parameters <- info$parameters
  }
  fit$train_seconds <- proc.time()[["elapsed"]] - started
  structure(fit, class = .connectivity_classes(model))
}

# A C++ fit's state: its live pointer and its model file bytes. A fit
# restored by readRDS() (its pointer is then dead) rebuilds the model from
# its own bytes, so it is always itself, whatever happened to any file.
.connectivity_state <- function(pointer, raw = .cpp_connectivity_to_raw(pointer)) {
  state <- new.env(parent = emptyenv())
  state$pointer <- pointer
  state$raw <- raw
  state
}

# The live pointer of a C++ fit (neural or bilinear).
.connectivity_pointer <- function(fit) {
  state <- fit$state
  if (.cpp_pointer_alive(state$pointer)) return(state$pointer)
  if (!is.raw(state$raw)) {
    stop("this connectivity model object has no C++ state and no model bytes (it was not made by ",
         "fit_connectivity() or load_connectivity())", call. = FALSE)
  }
  # Any format version: see .model_pointer().
  state$pointer <- .cpp_connectivity_from_raw(state$raw, "the connectivity model object's saved state", TRUE)
  state$pointer
}

.check_fit <- function(fit) {
  if (!inherits(fit, "exprflow_connectivity")) {
    stop("`fit` must be an exprflow_connectivity (from fit_connectivity() or load_connectivity())",
         call. = FALSE)
  }
}

# Predictions for pairs (i, j) of rows of `expression` (already aligned to
# fit$genes and scaled) and `coords` (those rows, or NULL).
.predict_pairs <- function(fit, expression, coords, i, j, batch_size = 1024L) {
  if (!length(i)) return(numeric())
  UseMethod(".predict_pairs")
}

.predict_pairs.exprflow_connectivity <- function(fit, expression, coords, i, j, batch_size = 1024L) {
  .predict_pair_baseline(fit$baseline, expression, coords, i, j)
}

.predict_pairs.exprflow_connectivity_cpp <- function(fit, expression, coords, i, j, batch_size = 1024L) {
  as.numeric(.cpp_connectivity_predict(.connectivity_pointer(fit), expression, .coords_arg(coords),
                                       as.integer(i), as.integer(j), as.integer(batch_size)))
}

# New expression aligned to the genes of a fit and scaled the fit's way.
.prepare_new_regions <- function(fit, expression, coords) {
  if (is.data.frame(expression)) expression <- as.matrix(expression)
  if (!is.matrix(expression) || !is.numeric(expression) || is.null(colnames(expression))) {
    stop("`expression` must be a numeric matrix, regions x genes, with gene colnames", call. = FALSE)
  }
  absent <- setdiff(fit$genes, colnames(expression))
  if (length(absent)) {
    stop(sprintf("`expression` lacks %d gene(s) of the model: %s", length(absent), .first_few(absent)),
         call. = FALSE)
  }
  expression <- expression[, fit$genes, drop = FALSE]
  n <- nrow(expression)
  if (is.null(coords) && !is.null(fit$coords_all) && n == fit$n_regions) coords <- fit$coords_all
  inputs <- .check_region_inputs(expression, NULL, coords)
  kept <- .kept_regions(expression)
  scaling <- if (is.null(fit$scaling)) NULL else lapply(fit$scaling, function(v) v[fit$genes])
  x <- .apply_scaling(expression[kept, , drop = FALSE], scaling)
  list(expression = x, coords = if (is.null(inputs$coords)) NULL else inputs$coords[kept, , drop = FALSE],
       kept = kept, n = n, labels = rownames(expression) %||% as.character(seq_len(n)))
}

#' Predict connectivity for every pair of regions
#'
#' @param fit An `exprflow_connectivity` from [fit_connectivity()].
#' @param expression Optional regions x genes matrix of new regions (must hold
#'   the model's genes, `fit$genes`; scaled as in training); default: the
#'   regions the model was fitted on.
#' @param coords Coordinates of the new regions (needed by `"distance_decay"`
#'   and spatial CLS models; the training coordinates are used when
#'   `expression` has as many regions as the training data).
#' @return A numeric region x region matrix in the original region numbering
#'   (rows of `expression`), region labels as dimnames, `NA` on the diagonal
#'   and in the rows and columns of regions without expression.
#' @examples
#' brain <- example_brain("fc")
#' fit <- fit_connectivity(brain$expression, brain$connectivity, model = "cge_linear")
#' pred <- predict_connectivity(fit)
#' cor(pred[upper.tri(pred)], brain$connectivity[upper.tri(pred)], use = "complete.obs")
#' @export
predict_connectivity <- function(fit, expression = NULL, coords = NULL) {
  .check_fit(fit)
  if (is.null(expression)) {
    if (!is.null(coords)) stop("`coords` can only be given together with new `expression`", call. = FALSE)
    data <- list(expression = fit$expression, coords = fit$coords, kept = fit$region_index,
                 n = fit$n_regions, labels = fit$labels)
  } else {
    data <- .prepare_new_regions(fit, expression, coords)
  }
  m <- length(data$kept)
  grid <- expand.grid(i = seq_len(m), j = seq_len(m))
  grid <- grid[grid$i != grid$j, , drop = FALSE]
  pred <- .predict_pairs(fit, data$expression, data$coords, grid$i, grid$j)
  .values_to_matrix(pred, data$kept[grid$i], data$kept[grid$j], data$n, data$labels)
}

#' Attention map of a neural connectivity model for one region pair
#'
#' @param fit A neural `exprflow_connectivity`.
#' @param i,j The two regions (original region numbers or labels); for the
#'   cross-attention model the queries come from region `i` (and the CLS
#'   tokens), the keys from region `j`.
#' @param layer Which layer (1-based).
#' @return A numeric matrix queries x keys of attention weights averaged over
#'   heads (rows sum to 1); for the cross-attention model rows are the CLS
#'   token(s) then the genes of region `i`, columns the genes of region `j`.
#' @examples
#' brain <- example_brain("fc")
#' fit <- fit_connectivity(brain$expression, brain$connectivity, epochs = 1,
#'                         d_model = 16, n_layers = 1, n_heads = 2)
#' a <- connectivity_attention(fit, "L_precuneus", "R_precuneus")
#' dim(a)
#' @export
connectivity_attention <- function(fit, i, j, layer = 1) {
  .check_fit(fit)
  if (!inherits(fit, "exprflow_connectivity_neural")) {
    stop(sprintf("model '%s' has no attention maps", fit$model), call. = FALSE)
  }
  layer <- .check_count(layer, "layer")
  row_of <- function(r, arg) {
    if (length(r) != 1L) stop(sprintf("`%s` must be a single region", arg), call. = FALSE)
    k <- .region_numbers(r, fit$labels, arg)
    row <- match(k, fit$region_index)
    if (is.na(row)) stop(sprintf("`%s`: region '%s' has no expression (dropped)", arg, fit$labels[k]), call. = FALSE)
    row
  }
  ri <- row_of(i, "i")
  rj <- row_of(j, "j")
  a <- .cpp_connectivity_attention(.connectivity_pointer(fit), fit$expression, .coords_arg(fit$coords),
                                   as.integer(ri), as.integer(rj), layer)
  g <- length(fit$genes)
  if (ncol(a) == g) colnames(a) <- fit$genes
  if (nrow(a) == g) {
    rownames(a) <- fit$genes
  } else if (nrow(a) > g && ncol(a) == g) {
    rownames(a) <- c(paste0("CLS", seq_len(nrow(a) - g)), fit$genes)
  }
  a
}

#' @export
print.exprflow_connectivity <- function(x, ...) {
  cat("<exprflow_connectivity> ", x$model, if (x$model %in% .baseline_models) " (baseline)", "\n", sep = "")
  cat(sprintf("  regions    : %d with expression of %d; %d train (%d of them validate)\n",
              length(x$region_index), x$n_regions, length(x$train_regions), length(x$validation_regions)))
  if (inherits(x, "exprflow_connectivity_neural")) {
    cat(sprintf("  genes      : %d (%d with a given vector, %d learned%s)\n", length(x$genes),
                sum(x$gene_has_vector), sum(!x$gene_has_vector),
                if (x$n_genes_dropped) sprintf(", %d dropped", x$n_genes_dropped) else ""))
  } else {
    cat(sprintf("  genes      : %d\n", length(x$genes)))
  }
  cat(sprintf("  pairs      : %d training, %d validation\n", x$n_train_pairs, x$n_validation_pairs))
  cat("  parameters : ", format(x$parameters, big.mark = ","), "\n", sep = "")
  h <- x$history
  if (NROW(h)) {
    last <- h[nrow(h), ]
    cat(sprintf("  trained    : %s%s, best epoch %s, train loss %.4g, validation loss %s\n",
                .count_of(nrow(h), "epoch"), if (isTRUE(x$stopped_early)) " (stopped early)" else "", format(x$best_epoch),
                last$train_loss, if (is.na(last$validation_loss)) "n/a" else sprintf("%.4g", last$validation_loss)))
  }
  formula <- .fit_formula(x)
  if (!is.null(formula)) cat("  fit        : ", formula, "\n", sep = "")
  cat(sprintf("  time       : %.1f s\n", x$train_seconds))
  invisible(x)
}

# The fitted formula of a baseline, for print(); NULL for neural models.
.fit_formula <- function(fit) UseMethod(".fit_formula")

.fit_formula.default <- function(fit) NULL

.fit_formula.exprflow_connectivity_distance_decay <- function(fit) {
  sprintf("%.4g + %.4g * exp(-d / %.4g)", fit$baseline$coef["a"], fit$baseline$coef["b"], fit$baseline$lambda)
}

.fit_formula.exprflow_connectivity_cge_linear <- function(fit) {
  sprintf("%.4g + %.4g * cor(x_i, x_j)", fit$baseline$coef["a"], fit$baseline$coef["b"])
}

.fit_formula.exprflow_connectivity_bilinear <- function(fit) {
  symmetric <- isTRUE(as.logical(fit$spec$symmetric))
  sprintf("c + z_i' W z_j, W = %s of rank <= %d, lambda %.3g", if (symmetric) "U V' + V U'" else "U V'",
          as.integer(fit$spec$rank) * if (symmetric) 2L else 1L, fit$spec$lambda)
}

#' Save and load connectivity models
#'
#' `save_connectivity()` writes a fitted model to ONE file (an `.rds`): the R
#' side of the fit (genes, region map, scaling, history, ...) and, for neural
#' models and the bilinear baseline, the bytes of the C++ model file (weights,
#' settings and, for the bilinear baseline, its standardisation).
#' `load_connectivity()` restores it; predictions are identical. A fit keeps
#' its C++ model's bytes, so one saved with plain `saveRDS()` and restored
#' with `readRDS()` also rebuilds itself, from its own bytes, on first use.
#'
#' The file is an RDS file, so load only files whose origin you trust (as for
#' any `readRDS()`). Model bytes inside it that an earlier exprflow wrote as a
#' LibTorch archive are read and kept in the current tensor format, so saving
#' the loaded fit again converts the file (see [load_model()]).
#'
#' @param fit An `exprflow_connectivity`.
#' @param path File path.
#' @return `save_connectivity()`: the fit, invisibly.
#'   `load_connectivity()`: an `exprflow_connectivity`.
#' @examples
#' brain <- example_brain("fc")
#' fit <- fit_connectivity(brain$expression, brain$connectivity, model = "cge_linear")
#' path <- tempfile(fileext = ".rds")
#' save_connectivity(fit, path)
#' restored <- load_connectivity(path)
#' all.equal(predict_connectivity(fit), predict_connectivity(restored))
#' @export
save_connectivity <- function(fit, path) {
  .check_fit(fit)
  .check_string(path, "path")
  r_side <- fit
  r_side$state <- NULL
  bytes <- if (.cpp_backed(fit)) {
    .connectivity_pointer(fit)  # rebuilds the state of a readRDS() copy, checking its bytes
    fit$state$raw
  }
  saveRDS(list(format = "exprflow_connectivity", version = 1L, fit = r_side, model_file = bytes),
          path.expand(path))
  invisible(fit)
}

.load_connectivity_file <- function(path) {
  content <- tryCatch(readRDS(path), error = function(e) NULL)
  if (!is.list(content) || !identical(content$format, "exprflow_connectivity")) {
    stop(sprintf("`path`: '%s' is not a connectivity model file written by save_connectivity()", path),
         call. = FALSE)
  }
  # Classes from the model name: files of earlier versions hold plainer ones.
  fit <- structure(unclass(content$fit), class = .connectivity_classes(content$fit$model))
  if (!is.null(fit$baseline)) class(fit$baseline) <- .baseline_parameter_classes(fit$model)
  fit$kind <- NULL  # earlier versions' branch field; the classes say it now
  if (.cpp_backed(fit)) {
    if (is.null(content$model_file)) {
      # Before the bilinear baseline moved to C++ it was saved as R matrices only.
      stop(sprintf(paste0("`path`: '%s' holds a '%s' fit from an earlier exprflow whose bilinear baseline was ",
                          "fitted in R; fit it again"), path, fit$model), call. = FALSE)
    }
    # The file is an RDS file, read by readRDS() above: its source is trusted
    # already, so the model bytes inside are read whatever their format, and
    # kept in the current one (save_connectivity() converts a legacy file).
    pointer <- .cpp_connectivity_from_raw(content$model_file, path, TRUE)
    fit$state <- .connectivity_state(pointer, .cpp_connectivity_to_raw(pointer))
  }
  fit
}

#' @rdname save_connectivity
#' @export
load_connectivity <- function(path) {
  .check_string(path, "path")
  if (!file.exists(path)) stop(sprintf("`path`: file '%s' does not exist", path), call. = FALSE)
  .load_connectivity_file(path.expand(path))
}

# ------------------------------------------------------------ cross-validation

# Arguments of fit_connectivity() that configure a neural model's training:
# cross-validation passes them from `...` to the neural models only.
.training_args <- c("epochs", "batch_size", "learning_rate", "patience", "training")

# Folds of the kept regions (original numbers): "random" deals a seeded
# shuffle into `folds` groups of near-equal size; "spatial" clusters the
# coordinates with k-means, so each fold is a contiguous patch of the brain.
.region_folds <- function(kept, coords, folds, scheme, seed) {
  if (folds > length(kept)) {
    stop(sprintf("`folds` (%d) is larger than the number of regions with expression (%d)", folds, length(kept)),
         call. = FALSE)
  }
  .with_seed(seed, {
    if (scheme == "random") {
      shuffled <- kept[sample.int(length(kept))]
      id <- rep_len(seq_len(folds), length(kept))
      lapply(seq_len(folds), function(f) sort(shuffled[id == f]))
    } else {
      if (is.null(coords)) stop("`scheme = \"spatial\"` needs `coords`", call. = FALSE)
      km <- stats::kmeans(coords[kept, , drop = FALSE], centers = folds, nstart = 20L, iter.max = 100L)
      # Order folds by cluster centre along the first principal axis for readability.
      axis <- stats::prcomp(coords[kept, , drop = FALSE])$rotation[, 1]
      order_f <- order(km$centers %*% axis)
      lapply(order_f, function(f) sort(kept[km$cluster == f]))
    }
  })
}

.pair_metrics <- function(pred, y) {
  ok <- is.finite(pred) & is.finite(y)
  pred <- pred[ok]
  y <- y[ok]
  r <- function(method) {
    if (length(y) < 3L || stats::sd(pred) == 0 || stats::sd(y) == 0) return(NA_real_)
    stats::cor(pred, y, method = method)
  }
  c(pearson = r("pearson"), spearman = r("spearman"), mse = mean((pred - y)^2))
}

#' Region-level cross-validation of connectivity models
#'
#' Compares models on the same folds and metrics, in a way that cannot leak
#' information from test regions into training:
#' * folds hold out REGIONS (not pairs): for each fold, the model is fitted
#'   with [fit_connectivity()] on the pairs whose BOTH regions are outside the
#'   fold (its early-stopping validation regions are drawn from those
#'   regions too), and tested on every pair with at least one held-out region;
#'   (`test_pairs = "both"` scores only pairs of two held-out regions);
#' * a held-out region's expression is seen only at test time (also the
#'   \[0, 1\] scaling, when needed, is learned on training regions);
#' * `"random"` folds are a seeded shuffle of the regions; `"spatial"` folds
#'   are contiguous patches (k-means of the coordinates into `folds`
#'   clusters, which may differ in size), so that a test region's neighbours are
#'   not in training either.
#'
#' The permuted null repeats the same folds after permuting the rows of
#' `expression` among the regions with expression (seeded): region labels no
#' longer match their expression, so what a model scores there does not come
#' from a real expression-connectivity relation (distance decay, which uses no
#' expression, does not change). On pairs of a held-out and a training region
#' (`test_pairs = "any"`) a flexible model can still score above 0 on the
#' null: a permuted expression profile still identifies its training region,
#' whose overall connection strength the model has learned. On
#' `test_pairs = "both"` the null is 0 on average, but one fold's score rests
#' on the pairs of a few regions, so it varies widely by chance.
#'
#' @param expression,connectivity,coords,gene2vec As for [fit_connectivity()].
#' @param models Model names (see [connectivity_models()]); `distance_decay`
#'   is left out with a message when `coords` is `NULL` and `models` is the
#'   default.
#' @param scheme `"random"` (default), `"spatial"`, or both.
#' @param folds Number of region folds.
#' @param permuted_null `TRUE`: also run every model on permuted expression;
#'   `FALSE`: no null; or a character vector of the models to run it for.
#' @param seed Seed of the folds, the permutation and every fit.
#' @param model_args Named list: per model, a list of settings passed to
#'   [fit_connectivity()] for that model only (e.g.
#'   `list(cross_attention = list(d_model = 32, epochs = 5))`).
#' @param test_pairs Which pairs of a fold are scored: `"any"` (default:
#'   every pair with at least one held-out region) and/or `"both"` (only pairs
#'   whose two regions are held out). With `"any"`, a test pair (held-out,
#'   training region) involves a region whose connectivity the model has seen:
#'   a model that recognises training regions (e.g. their overall connection
#'   strength) scores above 0 there even on permuted expression; `"both"`
#'   removes that, at the price of fewer test pairs. Several values give rows
#'   for each, from the same fits.
#' @param verbose Print one line per fit;
#'   `TRUE` by default in interactive sessions (`interactive()`), as for
#'   every exprflow function with `verbose`.
#' @param ... Arguments of [fit_connectivity()] for every model (e.g.
#'   `epochs`, `batch_size`, `validation_fraction`, `missing_genes`); model
#'   settings such as `d_model` belong in `model_args`. The training
#'   arguments (`epochs`, `batch_size`, `learning_rate`, `patience`,
#'   `training`) are for the neural models: the baselines keep their own
#'   defaults (the bilinear baseline trains 1500 full-batch epochs); give a
#'   baseline's in `model_args`, e.g. `list(bilinear = list(epochs = 500))`.
#' @return A data.frame of class `exprflow_connectivity_cv`, one row per
#'   model, scheme, null flag and fold: `model, scheme, fold, pearson,
#'   spearman, mse, train_seconds, n_train_pairs, n_test_pairs, null,
#'   test_pairs`. Its
#'   attribute `folds` holds, per scheme, the held-out regions of each fold,
#'   and `train_pairs` the pairs each fit used (original region numbers), so
#'   the split can be checked. `summary()` gives mean and sd per model.
#' @examples
#' brain <- example_brain("fc")
#' cv <- cross_validate_connectivity(brain$expression, brain$connectivity, brain$coords,
#'                                   models = c("cge_linear", "distance_decay"), folds = 3,
#'                                   permuted_null = "cge_linear")
#' summary(cv)
#' @export
cross_validate_connectivity <- function(expression, connectivity, coords = NULL,
                                        models = c("cross_attention", "cge_linear", "distance_decay", "bilinear"),
                                        scheme = c("random", "spatial"), folds = 5, permuted_null = TRUE,
                                        gene2vec = NULL, seed = 1, model_args = list(),
                                        test_pairs = c("any", "both"), verbose = interactive(), ...) {
  if (missing(models) && is.null(coords)) {
    message("no `coords`: leaving out 'distance_decay'")
    models <- setdiff(models, "distance_decay")
  }
  if (!is.character(models) || !length(models) || anyNA(models)) {
    stop("`models` must be a character vector of model names (see connectivity_models())", call. = FALSE)
  }
  for (m in models) .check_model_name(m, "models")
  scheme <- if (missing(scheme)) "random" else match.arg(scheme, several.ok = TRUE)
  test_pairs <- if (missing(test_pairs)) "any" else match.arg(test_pairs, several.ok = TRUE)
  folds <- .check_count(folds, "folds", min = 2)
  .check_count(seed, "seed", min = 0)
  if (isTRUE(permuted_null)) {
    null_models <- models
  } else if (isFALSE(permuted_null)) {
    null_models <- character()
  } else if (is.character(permuted_null) && all(permuted_null %in% models)) {
    null_models <- permuted_null
  } else {
    stop("`permuted_null` must be TRUE, FALSE or a subset of `models`", call. = FALSE)
  }
  if (!is.list(model_args) || (length(model_args) && (is.null(names(model_args)) ||
                                                       !all(names(model_args) %in% models)))) {
    stop("`model_args` must be a list named by entries of `models`", call. = FALSE)
  }
  common <- list(...)
  allowed <- setdiff(names(formals(fit_connectivity)),
                     c("expression", "connectivity", "coords", "gene2vec", "model", "train_regions", "seed",
                       "verbose", "..."))
  if (length(common) && (is.null(names(common)) || !all(names(common) %in% allowed))) {
    stop(sprintf("`...` takes arguments of fit_connectivity() (%s); model settings go in `model_args`",
                 .first_few(allowed, 10L)), call. = FALSE)
  }
  inputs <- .check_region_inputs(expression, connectivity, coords)
  if ("distance_decay" %in% models && is.null(inputs$coords)) {
    stop("model 'distance_decay' needs region coordinates: pass `coords`", call. = FALSE)
  }
  pairs <- .region_pairs(inputs$expression, inputs$connectivity, inputs$coords)
  kept <- pairs$region_index
  permuted <- inputs$expression
  perm <- .with_seed(seed + 1L, kept[sample.int(length(kept))])
  permuted[kept, ] <- inputs$expression[perm, ]

  rows <- list()
  fold_list <- list()
  pair_list <- list()
  for (sch in scheme) {
    held <- .region_folds(kept, inputs$coords, folds, sch, seed)
    fold_list[[sch]] <- held
    for (is_null in c(FALSE, TRUE)) {
      run_models <- if (is_null) null_models else models
      expr <- if (is_null) permuted else inputs$expression
      for (m in run_models) {
        for (f in seq_along(held)) {
          train_regions <- setdiff(kept, held[[f]])
          shared <- if (m %in% .baseline_models) common[setdiff(names(common), .training_args)] else common
          args <- c(list(expression = expr, connectivity = inputs$connectivity, coords = inputs$coords,
                         gene2vec = gene2vec, model = m, train_regions = train_regions, seed = seed,
                         verbose = FALSE), shared, model_args[[m]])
          fit <- suppressMessages(do.call(fit_connectivity, args))
          held_i <- pairs$region_index[pairs$i] %in% held[[f]]
          held_j <- pairs$region_index[pairs$j] %in% held[[f]]
          test <- held_i | held_j
          data <- .prepare_new_regions(fit, expr, inputs$coords)
          rows_i <- match(pairs$region_index[pairs$i[test]], data$kept)
          rows_j <- match(pairs$region_index[pairs$j[test]], data$kept)
          pred <- .predict_pairs(fit, data$expression, data$coords, rows_i, rows_j)
          for (tp in test_pairs) {
            use <- if (tp == "any") rep(TRUE, sum(test)) else (held_i & held_j)[test]
            metrics <- .pair_metrics(pred[use], pairs$target[test][use])
            rows[[length(rows) + 1L]] <- data.frame(
              model = m, scheme = sch, fold = f, pearson = metrics[["pearson"]],
              spearman = metrics[["spearman"]], mse = metrics[["mse"]], train_seconds = fit$train_seconds,
              n_train_pairs = fit$n_train_pairs, n_test_pairs = sum(use), null = is_null, test_pairs = tp,
              stringsAsFactors = FALSE)
            if (isTRUE(verbose)) {
              message(sprintf("%s %s%s fold %d/%d (%s test pairs): pearson %.3f, %.1f s", m, sch,
                              if (is_null) " (null)" else "", f, length(held), tp, metrics[["pearson"]],
                              fit$train_seconds))
            }
          }
          pair_list[[paste(m, sch, if (is_null) "null" else "real", f, sep = ":")]] <- fit$train_pairs
          if (.cpp_backed(fit)) rm(fit)
        }
      }
    }
  }
  out <- do.call(rbind, rows)
  attr(out, "folds") <- fold_list
  attr(out, "train_pairs") <- pair_list
  class(out) <- c("exprflow_connectivity_cv", "data.frame")
  out
}

#' @export
summary.exprflow_connectivity_cv <- function(object, ...) {
  df <- as.data.frame(unclass(object)[c("model", "scheme", "null", "test_pairs", "pearson", "spearman", "mse",
                                        "train_seconds")], stringsAsFactors = FALSE)
  keys <- unique(df[c("model", "scheme", "null", "test_pairs")])
  out <- do.call(rbind, lapply(seq_len(nrow(keys)), function(k) {
    s <- df[df$model == keys$model[k] & df$scheme == keys$scheme[k] & df$null == keys$null[k] &
              df$test_pairs == keys$test_pairs[k], ]
    data.frame(model = keys$model[k], scheme = keys$scheme[k], null = keys$null[k],
               test_pairs = keys$test_pairs[k], folds = nrow(s),
               pearson_mean = mean(s$pearson), pearson_sd = stats::sd(s$pearson),
               spearman_mean = mean(s$spearman), spearman_sd = stats::sd(s$spearman),
               mse_mean = mean(s$mse), mse_sd = stats::sd(s$mse),
               train_seconds = mean(s$train_seconds), stringsAsFactors = FALSE)
  }))
  rownames(out) <- NULL
  class(out) <- c("summary.exprflow_connectivity_cv", "data.frame")
  out
}

#' @export
print.summary.exprflow_connectivity_cv <- function(x, digits = 3, ...) {
  shown <- data.frame(
    model = ifelse(x$null, paste0(x$model, " (permuted null)"), x$model), scheme = x$scheme,
    `test pairs` = x$test_pairs, folds = x$folds,
    pearson = sprintf("%.*f \u00b1 %.*f", digits, x$pearson_mean, digits, x$pearson_sd),
    spearman = sprintf("%.*f \u00b1 %.*f", digits, x$spearman_mean, digits, x$spearman_sd),
    mse = sprintf("%.*g \u00b1 %.*g", digits, x$mse_mean, digits, x$mse_sd),
    `train s / fold` = sprintf("%.1f", x$train_seconds), check.names = FALSE, stringsAsFactors = FALSE)
  print(shown, row.names = FALSE, right = FALSE)
  invisible(x)
}
