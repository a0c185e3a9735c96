#' Generate cells from a trained model
#'
#' Samples new cells with the model's EMA weights, integrating from Gaussian
#' noise (t = 1) to cells (t = 0) with one of the samplers, optionally with
#' classifier-free guidance. Every sampler works with every objective: it
#' only needs the model's predictions of the clean cell and of the noise.
#'
#' Gene-space models (`"latent_tokens"`, `"state_mlp"`) generate
#' log-normalised expression, `log1p(count / L * 1e4)`. Counts invert that
#' transform for a library size `L` drawn from the training cells of the
#' same condition, with stochastic rounding (which keeps the expected
#' counts). They are not drawn again from a count distribution around the
#' expression: the model was trained on observed cells, so its samples
#' already carry their sampling noise, and a second draw would add it twice
#' (on held-out PBMCs that raised the kNN real-vs-generated AUC from 0.87 to
#' 0.99).
#'
#' VAE-based models (`"vae"`, `"latent_mlp"`, `"latent_dit"`,
#' `"latent_ssm"`) sample a latent code (with the flow; `"vae"` from its
#' N(0, I) prior), decode it, and draw counts from their NB / ZINB / Poisson
#' likelihood for the library size drawn for the cell.
#'
#' For every model, as for observed cells, `logcounts` is the
#' log-normalisation of the returned counts and `library_size` their total.
#'
#' `generate_cells()` is generic: it also samples from the baselines of
#' [fit_baseline()] (which ignore the sampler settings) and, at given times
#' (`time =`), from the time-course baselines of [fit_dynamics_baseline()]
#' (log expression, assay `logcounts`).
#'
#' @param model An `exprflow_model`, or an `exprflow_baseline`.
#' @param n Number of cells. With `condition = NULL` on a conditional model,
#'   conditions are allotted in proportion to the training cells.
#' @param condition `NULL`; one level (all `n` cells); one level per cell
#'   (`n` may then be omitted); or a named vector of counts per level, e.g.
#'   `c(B = 100, NK = 50)`. For a model of several covariates (and for any
#'   conditional model): a data.frame with one column per covariate and one
#'   row per cell to generate, e.g.
#'   `data.frame(cell_type = "B", stim = rep(c("ctrl", "stim"), 50))`; a
#'   single row is repeated `n` times. A covariate left out (or `NA`) is
#'   unconditional (its null embedding, what classifier-free guidance
#'   trains). A baseline of [fit_baseline()] takes the same data.frame with
#'   its one condition column.
#' @param method `NULL` for the objective's default (`"euler"` for flow,
#'   `"ddim"` for DDPM), or `"euler"` (first-order ODE step; equal to
#'   deterministic DDIM), `"heun"` (second-order ODE step: two network
#'   evaluations per step, more accurate for the same number of evaluations),
#'   `"ddim"` (with `eta` noise) or `"ddpm"` (ancestral sampling).
#' @param steps Sampling steps (for DDPM models at most the training
#'   timesteps, 1000 by default).
#' @param guidance_scale Classifier-free guidance scale; 1 is the plain
#'   conditional model, larger values push cells towards their condition.
#'   Per covariate: a named vector, e.g. `c(stim = 2)` (covariates not named
#'   get 1). Each named covariate `a` is guided given the others:
#'   `out(c) + (w_a - 1) (out(c) - out(c without a))`, so `c(stim = 0)` gives
#'   cells of the asked cell type with the stimulation left unknown, and for
#'   a one-covariate model it is ordinary guidance. One number guides all
#'   covariates together against the all-null condition.
#'   `NULL` (default): the model's own default, 2 for the VAE-based flow
#'   models (`guidance_scale` in [architecture_defaults()]), 1 otherwise.
#' @param eta DDIM noise (0 = deterministic); only used by `method = "ddim"`.
#' @param seed `NULL` (default) draws the seed from R's random number
#'   generator, so `set.seed()` makes the call reproducible and repeated calls
#'   give new cells; a whole number fixes the cells (with the same
#'   `batch_size`, as noise is drawn per batch). The seed used is kept in
#'   `metadata(result)$exprflow$seed`.
#' @param batch_size Cells sampled at once.
#' @param library_size How a generated cell's library size is drawn for its
#'   condition: `"empirical"`, the size of a random training cell of that
#'   condition; `"lognormal"`, from a log-normal fitted to them; or
#'   `"matched"` (gene-space models), the training cells' sizes of that
#'   condition, given to the generated cells of the call in the order of
#'   their numbers of detected genes (log-normalised values above 0.25): the
#'   sizes keep the condition's distribution, and the deeper ones go to the
#'   cells that detect more genes (a cell asked for alone gets a random
#'   training cell's size, as with `"empirical"`). `NULL` (default) is
#'   `"matched"` for gene-space models (`"empirical"` for those saved by
#'   exprflow before it, which lack the training cells' detected genes) and
#'   `"empirical"` for latent models, whose decoder draws counts at the size.
#'   Why matched: a gene-space model generates log expression, which carries
#'   the depth of the cell it resembles in which genes it detects; counts at
#'   another depth distort it. Training cells of held-out PBMC3k with their
#'   library size redrawn within their cell type score MMD 0.0053 against
#'   the held-out cells, 0.0016 with their own. `state_mlp` on held-out
#'   example data (seeds 1-3) scores MMD / energy distance / kNN AUC /
#'   condition accuracy 0.0086 / 0.350 / 0.593 / 0.796 with `"empirical"`
#'   and 0.0079 / 0.328 / 0.569 / 0.796 with `"matched"`; on held-out PBMC3k
#'   (seeds 1-3) `state_mlp` 0.0081 / 0.317 / 0.634 / 0.884 against 0.0069
#'   / 0.277 / 0.608 / 0.875 and `pathway_tokens` 0.0097 / 0.377 / 0.684 /
#'   0.894 against 0.0088 / 0.351 / 0.658 / 0.878. (Until this
#'   version "matched" took the 5 training cells nearest in detected genes;
#'   a generated cell detects about twice as many genes as a real one, so
#'   those were the deepest cells and the sizes came out about twice the
#'   real ones.) The method used is kept in
#'   `metadata(result)$exprflow$library_size`.
#' @param gene_calibration Gene-space models: `"mean"` scales each gene's
#'   expected counts by a factor per combination of covariate levels, the
#'   training cells' mean share of the gene over a calibration sample's,
#'   drawn by the model at the end of training (up to 100 cells per
#'   combination, default sampler and guidance); `"none"` leaves them.
#'   `NULL` (default) is `"mean"` where the model has the factors (models
#'   saved by exprflow before it have none) and `"none"` for latent models,
#'   whose decoder gives the shares. Why: a sample's values where real cells
#'   have a zero or a count now and then are blurred towards their mean log
#'   value, and expm1 of a mean log value is below the mean of expm1, so
#'   rarely detected genes get too few counts. `state_mlp` on held-out
#'   cells (seeds 1-3; MMD / energy distance / kNN AUC / condition
#'   accuracy): example data 0.0039 / 0.170 / 0.542 / 0.798 against 0.0079 /
#'   0.328 / 0.569 / 0.796 with `"none"`, PBMC3k 0.0033 / 0.135 / 0.606 /
#'   0.886 against 0.0069 / 0.277 / 0.608 / 0.875. The factors come from the
#'   default sampler, steps and guidance; other settings get the same. The
#'   choice made is kept in `metadata(result)$exprflow$gene_calibration`.
#' @param precision Of the network's matrix products while sampling:
#'   `"float32"`, or `"bfloat16"` on CPUs with AVX-512-BF16 or AMX
#'   (`exprflow_info()$bfloat16_fast`; elsewhere it is slower and warns), as
#'   `precision` in [fit_expression_model()]'s `training`: 256 cells of
#'   `state_mlp`, `latent_mlp` and `latent_dit` sampled 1.6-2.0x faster on
#'   2 cores with AMX.
#' @param unseen How a latent flow model (`"latent_mlp"`, `"latent_dit"`,
#'   ...) generates a combination of covariate levels no training cell had,
#'   e.g. the stimulated cells of a cell type only seen as controls: `NULL`
#'   (default) is `"shift"` for those models, `"joint"` for others (their
#'   only one). `"shift"` samples the flow at a combination that training
#'   cells had, one covariate away (the last covariate of `condition` is
#'   changed first, so list the context, e.g. cell type, first; of its
#'   levels, the one with the most cells there), and moves the codes by the
#'   latent shift between the two combinations (as `transfer_cells(mode =
#'   "shift")`: the average over the contexts that hold both, weighted by
#'   `shift_bandwidth`). A perturbation
#'   set's level is never changed: its embedding composes its members.
#'   `"joint"` asks the flow for the combination itself, which it composes
#'   less well: on Kang 2018, a `"latent_mlp"` generating the stimulated
#'   cells of each of six cell types held out in turn
#'   (`inst/scripts/perturbation_kang.R`, means over the types), squared
#'   Pearson of mean expression 0.908 with `"shift"` against 0.900 with
#'   `"joint"` (top-100 DEGs 0.765 against 0.759), energy distance 7.4
#'   against 7.5, both with `response = "model"`; with the default
#'   `response`, 0.928, 0.864 and 5.8. At the VAE's earlier KL weight 1 the
#'   flow composed worse: 0.913 against 0.886 (top-100 DEGs 0.799, 0.793 in
#'   a later run, against 0.691), energy distance 6.9 against 8.2 (with
#'   `shift_bandwidth = Inf`: 0.904, 0.765 and 7.6).
#' @param shift_bandwidth With `unseen = "shift"`, how the latent shift
#'   weighs the contexts that hold both combinations, as in
#'   [transfer_cells()] (`NULL`: the default there; `Inf`: all alike).
#' @param response With `unseen = "shift"`, how the cells of a combination
#'   no training cell had get their response: `NULL` (default) is `"both"`
#'   there. `"model"`: counts drawn from the decoder's law at the shifted
#'   codes. `"observed"` and `"both"`: the cells are generated at the seen
#'   combination, then moved as [transfer_cells()] with `mode = "shift"`
#'   moves observed cells: each count carried to its quantile under the
#'   shifted code's law, the mean change per gene set by the training
#'   cells' observed change between the two combinations (`"observed"`) or
#'   halfway between it and the decoder's (`"both"`); see `response` there.
#'   On Kang 2018 (a `"latent_mlp"` generating the stimulated cells of
#'   each of six cell types held out in turn, as for `unseen`; squared
#'   Pearson of mean expression all genes / top-100 DEGs, delta Pearson all
#'   genes / top-100 DEGs, DEG overlap, energy distance): `"both"` 0.928 /
#'   0.864 / 0.843 / 0.945 / 0.673 / 5.82, `"observed"` 0.919 / 0.856 /
#'   0.826 / 0.932 / 0.652 / 5.63, `"model"` 0.908 / 0.765 / 0.799 / 0.916
#'   / 0.623 / 7.39 (at the VAE's earlier KL weight 1: 0.929 / 0.869 / 0.845
#'   / 0.945 / 0.663 / 5.79, 0.921 / 0.859 / 0.831 / 0.933 / 0.648 / 5.64 and
#'   0.913 / 0.793 / 0.807 / 0.919 / 0.610 / 6.96; the same cells moved by
#'   `"model"` instead of drawn at the shifted codes: 0.917 / 0.819 / 0.818
#'   / 0.924 / 0.615 / 6.56).
#' @param ... Arguments of the methods; a name no method knows (e.g. a
#'   misspelling) is an error.
#' @return A SingleCellExperiment with assays `counts` and `logcounts`
#'   (`log1p(count / library_size * 1e4)`), both sparse (dgCMatrix), the
#'   model's genes as rownames, and colData holding the condition used
#'   (column named after the training condition) and `library_size`, each
#'   cell's total count (`colSums(counts)`).
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", condition = "cell_type", epochs = 1,
#'                               n_tokens = 4, token_dim = 16, n_layers = 1,
#'                               n_heads = 2, hidden = 64)
#' generate_cells(model, condition = c(B = 10, NK = 5))
#' @export
generate_cells <- function(model, n = NULL, condition = NULL, ...) UseMethod("generate_cells")

#' @rdname generate_cells
#' @export
generate_cells.exprflow_model <- function(model, n = NULL, condition = NULL, method = NULL,
                                          steps = 50, guidance_scale = NULL, eta = 0, seed = NULL,
                                          batch_size = 256, library_size = NULL,
                                          precision = c("float32", "bfloat16"), unseen = NULL,
                                          shift_bandwidth = NULL, response = NULL, gene_calibration = NULL,
                                          ...) {
  .reject_unknown_arguments(list(...), "generate_cells")
  pointer <- .model_pointer(model)
  method <- .sampler_method(method, model)
  .check_count(steps, "steps")
  guidance_scale <- guidance_scale %||% model$spec$guidance_scale %||% 1
  guidance <- .guidance_option(model, guidance_scale)
  .check_number(eta, "eta", 0, 1)
  seed <- .sampling_seed(seed)
  .check_count(batch_size, "batch_size")
  library_size <- .library_size_method(library_size)
  gene_calibration <- .gene_calibration(gene_calibration)
  precision <- .sampling_precision(precision)
  unseen <- .unseen_combinations(model, unseen)
  if (!is.null(shift_bandwidth) && unseen != "shift") {
    stop("`shift_bandwidth` weighs the contexts of the latent shift, which only `unseen = \"shift\"` uses", call. = FALSE)
  }
  shift_bandwidth <- .shift_bandwidth(shift_bandwidth)
  response <- .unseen_response(response, unseen)
  if (!isTRUE(model$trained)) stop("the model has not been trained yet", call. = FALSE)
  table <- .generation_table(model, n, condition)
  options <- c(list(method = method, steps = steps, guidance_scale = guidance, eta = eta,
                    seed = seed, batch_size = batch_size, library_size = library_size, precision = precision,
                    unseen = unseen, transfer_response = response, gene_calibration = gene_calibration),
               shift_bandwidth)
  out <- .cpp_model_generate(pointer, nrow(table), .covariate_codes(model, table), options)

  .generated_sce(out$counts, table, model$genes, model$condition, model$covariates,
                 list(architecture = model$architecture, method = method, steps = steps,
                      guidance_scale = guidance_scale, eta = eta, seed = seed,
                      library_size = out$library_size_method, gene_calibration = out$gene_calibration,
                      unseen = unseen, response = response))
}

# `gene_calibration` of generate_cells(): NULL is the model's own default
# (the core's "default").
.gene_calibration <- function(gene_calibration) {
  if (is.null(gene_calibration)) return("default")
  if (!is.character(gene_calibration) || length(gene_calibration) != 1L ||
      !gene_calibration %in% c("mean", "none")) {
    stop("`gene_calibration` must be NULL, \"mean\" or \"none\"", call. = FALSE)
  }
  gene_calibration
}

# `library_size` of generate_cells(): NULL is the model's own default (the
# core's "default"), else one of the methods.
.library_size_method <- function(library_size) {
  if (is.null(library_size)) return("default")
  methods <- c("empirical", "lognormal", "matched")
  if (!is.character(library_size) || length(library_size) != 1L || !library_size %in% methods) {
    stop("`library_size` must be NULL or one of ", paste0("\"", methods, "\"", collapse = ", "), call. = FALSE)
  }
  library_size
}

# `response` of generate_cells(): NULL is "both" with unseen = "shift",
# "model" (the only one) otherwise.
.unseen_response <- function(response, unseen) {
  if (is.null(response)) return(if (unseen == "shift") "both" else "model")
  .check_response(response)
  if (response != "model" && unseen != "shift") {
    stop(sprintf("`response = \"%s\"` moves the cells of unseen combinations by the latent shift: it needs `unseen = \"shift\"`",
                 response), call. = FALSE)
  }
  response
}

# `shift_bandwidth` of generate_cells() and transfer_cells() as a core
# option: none for NULL (the core's default), else a positive number (Inf:
# every context weighs the same).
.shift_bandwidth <- function(bandwidth) {
  if (is.null(bandwidth)) return(list())
  if (!is.numeric(bandwidth) || length(bandwidth) != 1L || is.na(bandwidth) || bandwidth <= 0) {
    stop("`shift_bandwidth` must be a positive number (Inf: every context weighs the same)", call. = FALSE)
  }
  list(shift_bandwidth = if (is.infinite(bandwidth)) -1 else as.numeric(bandwidth))  # the core's infinity
}

# `unseen` of generate_cells(): NULL is "shift" for latent flows, "joint"
# (the only one) for other models.
.unseen_combinations <- function(model, unseen) {
  flow_on_codes <- identical(model$space, "latent") && !identical(model$architecture, "vae")
  if (is.null(unseen)) return(if (flow_on_codes) "shift" else "joint")
  .check_string(unseen, "unseen")
  if (!unseen %in% c("shift", "joint")) {
    stop(sprintf("`unseen` must be NULL, \"shift\" or \"joint\"; got \"%s\"", unseen), call. = FALSE)
  }
  if (unseen == "shift" && !flow_on_codes) {
    stop(sprintf("`unseen = \"shift\"` needs a latent flow (\"latent_mlp\", \"latent_dit\", ...): \"%s\" has none",
                 model$architecture), call. = FALSE)
  }
  unseen
}

# The covariates of the cells to generate: a data.frame with a column per
# covariate of the model (NA: unknown) and a row per cell.
.generation_table <- function(model, n, condition) {
  .check_cell_number(n)
  if (is.data.frame(condition)) return(.covariate_table(model, condition, n))
  if (length(model$covariates) > 1L) {
    stop(sprintf(paste0("the model has several covariates (%s): give `condition` as a data.frame with a ",
                        "column per covariate and a row per cell"), .first_few(names(model$covariates))),
         call. = FALSE)
  }
  levels <- .generation_levels(model, n, condition)
  table <- data.frame(row.names = seq_along(levels))
  if (length(model$covariates)) table[[model$condition]] <- levels
  table
}

# `n`: NULL or one number of cells. Names would read like counts per level,
# which `condition` takes: an error rather than names silently dropped.
.check_cell_number <- function(n) {
  if (is.null(n)) return(invisible(NULL))
  if (!is.numeric(n)) {
    stop(sprintf("`n` must be one number of cells; got an object of class '%s'", class(n)[1]), call. = FALSE)
  }
  if (!is.null(names(n))) {
    stop(sprintf("`n` is one number of cells, without names; counts per level go in `condition`, e.g. condition = c(%s = %s)",
                 names(n)[1], format(n[[1]])), call. = FALSE)
  }
  .check_count(n, "n")
}

# The sampler a user asked for (NULL: the model objective's default), checked.
.sampler_method <- function(method, model) {
  if (is.null(method)) return(model$default_sampler)
  if (identical(model$architecture, "vae")) {
    stop("the \"vae\" architecture samples its prior: leave `method` NULL", call. = FALSE)
  }
  .check_string(method, "method")
  match.arg(method, c("euler", "heun", "ddim", "ddpm"))
}

# Generated cells as a SingleCellExperiment: counts (genes x cells, made
# sparse), their logcounts (log1p(count / library size * 1e4), sparse as the
# counts), colData with the condition (named after the training condition)
# and each cell's library size (its total count), and the generation
# settings as metadata. `cells`: their names (NULL: generated_<seed>_<i>).
# `levels`: one level per cell of the one `condition` with
# `condition_levels`; or a data.frame with a column per covariate and
# `condition_levels` a named list of each covariate's levels.
.generated_sce <- function(counts, levels, genes, condition, condition_levels, settings, cells = NULL) {
  n_cells <- ncol(counts)
  # Named after the seed too, so that cells of two calls can be combined.
  cells <- cells %||% sprintf("generated_%s_%d", format(settings$seed, scientific = FALSE), seq_len(n_cells))
  counts <- methods::as(counts, "CsparseMatrix")  # integer or double base matrix -> dgCMatrix
  dimnames(counts) <- list(genes, cells)
  library_size <- Matrix::colSums(counts)
  col_data <- S4Vectors::DataFrame(row.names = cells)
  if (is.data.frame(levels)) {
    for (name in names(levels)) {
      known <- condition_levels[[name]]
      # Perturbation combinations the model has no level for come after its
      # levels; a column that is no covariate (doses) stays as it is.
      col_data[[name]] <- if (is.null(known)) levels[[name]] else
        factor(levels[[name]], levels = union(known, unique(stats::na.omit(levels[[name]]))))
    }
  } else if (length(condition_levels)) {
    col_data[[condition]] <- factor(levels, levels = condition_levels)
  }
  # A training condition called "library_size" keeps its name; the sizes move aside.
  size_column <- if ("library_size" %in% condition) "exprflow_library_size" else "library_size"
  col_data[[size_column]] <- unname(library_size)
  sce <- SingleCellExperiment::SingleCellExperiment(
    assays = list(counts = counts, logcounts = .log_normalise(counts, 1e4, library_size)),
    colData = col_data)
  S4Vectors::metadata(sce)$exprflow <- settings
  sce
}

# One condition level per generated cell (NA for an unconditional model).
.generation_levels <- function(model, n, condition) {
  .check_cell_number(n)
  levels <- model$levels
  if (!length(levels)) {
    if (!is.null(condition)) stop("the model is unconditional: leave `condition` NULL", call. = FALSE)
    if (is.null(n)) stop("`n` (the number of cells) is required", call. = FALSE)
    .check_count(n, "n")
    return(rep(NA_character_, n))
  }
  check_known <- function(values) {
    unknown <- setdiff(values, levels)
    if (length(unknown)) {
      stop(sprintf("unknown condition level(s) %s; the model knows: %s", .first_few(unknown),
                   .first_few(levels, 50L)), call. = FALSE)
    }
  }
  if (is.null(condition)) {
    if (is.null(n)) stop("give `n` and/or `condition`", call. = FALSE)
    .check_count(n, "n")
    weights <- model$level_counts
    if (anyNA(weights)) weights[] <- 1
    share <- n * weights / sum(weights)
    per_level <- floor(share)
    remainder <- n - sum(per_level)
    if (remainder > 0) {
      top <- order(share - per_level, decreasing = TRUE)[seq_len(remainder)]
      per_level[top] <- per_level[top] + 1
    }
    return(rep(levels, times = per_level))
  }
  if (is.numeric(condition) && !is.null(names(condition))) {
    check_known(names(condition))
    if (anyNA(condition) || any(condition < 0) || any(condition != round(condition))) {
      stop("counts per level in `condition` must be whole numbers >= 0", call. = FALSE)
    }
    if (!is.null(n) && n != sum(condition)) stop("`n` differs from sum(condition)", call. = FALSE)
    if (sum(condition) < 1) stop("`condition` asks for zero cells", call. = FALSE)
    return(rep(names(condition), times = condition))
  }
  condition <- as.character(condition)
  if (anyNA(condition) || !length(condition)) stop("`condition` must not be empty or NA", call. = FALSE)
  check_known(condition)
  if (length(condition) == 1L) {
    if (is.null(n)) n <- 1L
    .check_count(n, "n")
    return(rep(condition, n))
  }
  if (!is.null(n) && n != length(condition)) {
    stop(sprintf("`n` (%d) differs from the number of conditions given (%d)", n, length(condition)),
         call. = FALSE)
  }
  condition
}

#' @export
generate_cells.default <- function(model, n = NULL, condition = NULL, ...) {
  stop("`model` must be an exprflow_model (from fit_expression_model() or load_model()), an ",
       "exprflow_baseline (from fit_baseline()) or an exprflow_dynamics_baseline (from fit_dynamics_baseline())",
       call. = FALSE)
}
