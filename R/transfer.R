# Counterfactual transfer: observed cells moved to another condition.

#' Move observed cells to another condition (counterfactual prediction)
#'
#' Answers "what would these cells look like under that condition?": each
#' cell of `x` keeps what the model does not explain by its condition and
#' takes the condition in `to`.
#'
#' * Gene-space models (flow or DDPM) invert each cell's log-normalised
#'   expression to noise under its own condition with a deterministic sampler
#'   (the reverse ODE; DDIM inversion for DDPM) and generate from that noise
#'   under the new condition.
#' * Latent models (`"latent_mlp"`, `"latent_dit"`, ...) do the same with the
#'   cell's latent code (the VAE's posterior mean), then decode it under the
#'   new condition; each observed count goes to its own quantile under the
#'   decoded likelihood, so the cell keeps its noise (`noise`). The `"vae"` alone
#'   decodes the code under the new condition (which changes the cell only
#'   when the decoder sees the condition, `decode_condition = 1`).
#' * Latent models, the `"vae"` included, also move cells by latent
#'   arithmetic (`mode = "shift"`, scGen's recipe): the code plus the
#'   difference of the training cells' mean codes between the cell's
#'   combination of levels and the new one, decoded. That difference is the
#'   cell's own context's (the kept covariates' levels) where training cells
#'   hold both ends, else the average over the contexts that do (e.g. every
#'   other cell type's response to a stimulus), those that start nearest the
#'   cell's own context weighing most (`shift_bandwidth`), else the
#'   difference pooled over all cells. A perturbation combination no cell
#'   had ("A+B") gets the sum of its members' shifts. A target no training
#'   cell had (a gene never knocked out) gets the weighted shift of its
#'   stand-ins, the 3 trained targets most alike to it (see `stand_ins`),
#'   weighted by that similarity, or the average of the trained targets that
#'   could be compared when none is alike. Its knock-out of its own gene is
#'   not modelled beyond what the stand-ins' shifts carry. See `stand_ins`
#'   for how well this predicts on real data.
#'
#' Every cell keeps its observed library size. Inverting under the cell's own
#' condition and generating under the same one returns the cell, up to the
#' sampler's discretisation error (more `steps` shrink it).
#'
#' @inheritParams reconstruct_cells
#' @param to The condition to move the cells to: one level (every cell), one
#'   level per cell, or a data.frame with a column named after the model's
#'   condition and one row (every cell) or one row per cell. For a model of
#'   several covariates, a data.frame with the covariates to change, e.g.
#'   `data.frame(stim = "stim")`: the others keep each cell's own levels.
#' @param from The cells' own condition: a colData column name or one level
#'   per cell (several covariates: their column names, or a data.frame with
#'   one row per cell). `NULL` reads the model's condition column(s) from `x`.
#' @param steps,method Deterministic sampler settings (as in
#'   [generate_cells()]): `method` `NULL` (the model's own: Euler for flows,
#'   DDIM for DDPM), `"euler"`, `"heun"` or `"ddim"` (with no noise).
#' @param guidance_scale Classifier-free guidance, used both ways (1: none;
#'   inverting with strong guidance is unstable); one number, or one per
#'   covariate as in [generate_cells()].
#' @param mode Under which covariates the cell is inverted and integrated
#'   back (a covariate changes for a cell when `to` gives it another level):
#'   `NULL` (default) is `"joint"`, or `"shift"` for the `"vae"`;
#'   `"joint"` all of them both ways; `"marginal"` only the
#'   changed ones, the others unknown both ways, so the cell moves as the
#'   population of every level of the kept covariates does; `"contrast"` the
#'   cell's own flow (inverted under all its covariates) plus the marginal
#'   contrast of the changed ones, `out(x | from) + out(x | changed in to) -
#'   out(x | changed in from)`. For a combination the model never trained
#'   on, e.g. the stimulated cells of a held-out cell type, "joint" asks the
#'   network for that combination, which it composes poorly; measured on Kang
#'   2018 with stimulated B cells held out (see the perturbation vignette),
#'   "marginal" raised the squared Pearson of mean expression from 0.90 to
#'   0.94 (top-100 DEGs 0.70 to 0.87). `"shift"` (latent models only) adds
#'   the latent shift described above; it needs no sampler (`steps`,
#'   `method` and `guidance_scale` are unused). On Kang 2018, holding out
#'   each of six cell types' stimulated cells in turn, a `"vae"` with
#'   `"shift"` (and `noise = "cell"`, `response = "model"`) averaged 0.933
#'   (all genes) and 0.846 (top-100 DEGs) against the mean shift's 0.906 and
#'   0.722 (and 0.934 and 0.843 for the mean shift weighted as the latent
#'   shift is, see `shift_bandwidth`); with `response = "observed"` 0.935
#'   and 0.862, and with the default (`"both"`) 0.943 and 0.878 (scGen
#'   reports 0.95 and 0.94 on its own labelling and genes of these data).
#' @param ... Unused (an error names any argument given here); dynamics
#'   models have their own method, see [simulate_trajectories()].
#' @param noise How a latent model's moved cells get their counts: `NULL`
#'   (default) is `"cell"` for latent models, `"drawn"` for gene-space
#'   models (their only one). `"cell"` keeps each cell's own noise: every
#'   observed count is carried to the same (randomised) quantile of its
#'   gene's law, from the law decoded from the cell's code under its own
#'   condition to the law after the move, so a cell that sat high in a
#'   gene's distribution stays high. A cell moved to its own condition is
#'   returned exactly. `"drawn"` draws new counts from the law after the
#'   move, as [generate_cells()] does. Measured on Kang 2018 (a `"vae"`,
#'   `mode = "shift"`, `response = "model"`, each of six cell types' control
#'   cells moved to the stimulated condition, `inst/scripts/perturbation_kang.R`; means over
#'   the types): energy distance to the real stimulated cells 2.04 with
#'   `"cell"` against 5.72 with `"drawn"` and 2.74 for the mean-shift
#'   baseline; squared Pearson of mean expression 0.933, 0.923 and 0.906.
#'   A `"latent_mlp"` gained in every mode (measured with
#'   `shift_bandwidth = Inf`), e.g. `"shift"` 6.55 -> 2.66 and
#'   `"contrast"` 7.82 -> 4.10 in energy distance. On Papalexi 2021's weak
#'   CRISPR responses (`inst/scripts/perturbation_papalexi.R`, a `"vae"`,
#'   one guide per target held out) it is mixed: energy distance 0.20
#'   against 0.26 and top-50 DEG overlap 0.367 against 0.357, but the
#'   response's correlation over those DEGs 0.35 against 0.41.
#' @param stand_ins What makes a trained target alike to an unseen one
#'   (`mode = "shift"` only):
#'   * `NULL` (default): co-expression over the cells of `x`, for targets
#'     that are model genes (each gene's correlations with every gene,
#'     compared by correlation: genes of one module share partners);
#'   * a named list of gene sets, e.g. [read_gmt()] of MSigDB Hallmark, KEGG
#'     and Reactome: the Jaccard index of the sets two genes belong to (the
#'     gene similarity GEARS builds from Gene Ontology);
#'   * a data.frame of regulator -> target edges, e.g. [read_grn()] of
#'     TRRUST: the Jaccard index of the genes' closed neighbourhoods (the
#'     gene, its regulators and its targets).
#'
#'   With a list or a network, any target they name can be predicted,
#'   measured gene or not, from the trained targets they name (at least one
#'   must be); a model gene they do not name gets the average of those.
#'   Measured on Papalexi 2021 with three targets held out whole
#'   (`inst/scripts/perturbation_papalexi_unseen.R`, folds 1-3: nine
#'   targets, package defaults), gene sets (Hallmark + KEGG + Reactome) are
#'   the best of the three: mean response correlation 0.40 (co-expression
#'   0.34, TRRUST 0.25), top-50 DEG overlap 0.46 (0.43, 0.36), energy
#'   distance 0.44 (0.59, 0.64), perturbation discrimination 0.33 (0.56,
#'   0.44; 0 best, 0.5 chance). Against the average knock-out (every
#'   perturbed training cell pooled) they win on DEG overlap (0.46 against
#'   0.37), energy distance (0.44 against 0.53) and telling the held-out
#'   targets apart, and lose on response correlation (0.40 against 0.44):
#'   weak evidence, not a validated predictor. Here the default response
#'   (`"both"`) is not the best: with `response = "observed"` the gene sets
#'   scored 0.40 / 0.44 / 0.41 / 0.28, with `"model"` 0.36 / 0.44 / 0.49 /
#'   0.39.
#' @param stand_in_weight How far an unseen target's shift trusts its
#'   stand-ins against the plain average of the trained targets that could
#'   stand in: 1 (default) the stand-ins alone, 0 the average, a number
#'   between, or `"validated"`: the weight that best predicts the trained
#'   targets' own latent shifts when each is left out in turn (least
#'   squares; 1 with fewer than three such targets). Measured as above
#'   (default `response`; response correlation / energy distance),
#'   `"validated"` helps the weaker knowledge (TRRUST 0.37 / 0.56 against
#'   0.25 / 0.64, co-expression 0.38 / 0.57 against 0.34 / 0.59) and is
#'   level for the gene sets' response correlation (0.41 against 0.40) at a
#'   cost in energy distance (0.51 against 0.44) and DEG overlap (0.44
#'   against 0.46); none reaches the average knock-out's response
#'   correlation (0.44).
#' @param precision Of the network's matrix products, as in
#'   [generate_cells()].
#' @param shift_bandwidth How the latent shift (`mode = "shift"`) weighs
#'   the other contexts' responses when the cell's own context has no
#'   training cells at the new condition (e.g. the stimulated cells of a
#'   held-out cell type): each context by a Gaussian kernel of the distance
#'   between its mean code at the cell's current condition and the cell's
#'   own context's there (e.g. between the types' control cells), of width
#'   `shift_bandwidth` times the median distance between the contexts;
#'   `Inf` weighs every context the same (scGen's balanced average).
#'   `NULL` (default) is 0.25. Why: a response depends on the state it
#'   starts from; IFN-beta moves monocytes far more than lymphocytes.
#'   Measured on Kang 2018 (a `"vae"`, `response = "model"`, each of six
#'   cell types' stimulated cells held out in turn,
#'   `inst/scripts/perturbation_kang.R`; means over the types), squared Pearson of mean expression over the top-100 DEGs
#'   0.846 with 0.25, 0.832 with 0.5, 0.821 with `Inf` (CD14+ monocytes
#'   0.66 against 0.53), energy distance 2.04, 2.23 and 2.38; 0.125 and
#'   0.0625 scored as 0.25. The same weighting of the other types' responses
#'   in expression space (`perturbation_shift(reference = )`) is as good a
#'   baseline: 0.843 and energy distance 1.70. On Papalexi 2021 with each
#'   target's cells of one replicate held out (the response from the other
#'   replicates, `inst/scripts/perturbation_papalexi_replicates.R`), 0.25
#'   against `Inf` with `response = "model"`: top-50 DEG delta correlation
#'   0.336 against 0.299, energy distance 0.217 against 0.236 (the mean
#'   shift: 0.392 and 0.187); with the default `response`, 0.410 against
#'   0.404 and 0.176 against 0.175.
#' @param response How the latent shift (`mode = "shift"`, `noise =
#'   "cell"`) sets the moved cells' response: `NULL` (default) is
#'   `"both"` there and `"model"` otherwise. `"model"`: as the decoder
#'   gives it at the shifted codes. `"observed"`: the cells of `x` making one
#'   move (from one combination of levels to another) change their mean
#'   log-normalised expression (`log1p(count / library size * 1e4)`) per gene
#'   as the training cells' mean does between the two combinations, by the
#'   latent shift's rule applied to the training cells' mean expression (the
#'   cell's own context, else the other contexts weighted by
#'   `shift_bandwidth` on the distances between their mean expression, else
#'   pooled; an unseen target's stand-ins; doses are not read, as in the
#'   latent shift); each cell departs from that mean as its `"model"`
#'   prediction departs from the model's mean response over the cells of
#'   `x` making the same move (so a cell moved alone gets the observed mean
#'   change).
#'   Those log values become counts again between the two neighbouring
#'   counts, drawn so that the expected log value is kept. So the decoder's
#'   errors in the mean response (on Kang it under-predicts how far IFN-beta
#'   moves CD14+ monocytes) give way to what the training cells show, and the
#'   model still gives each cell its own response. Cells moved to their own
#'   levels are returned as they were. `"both"`: halfway between the two,
#'   the mean change per gene being the average of the observed one and the
#'   model's own (each cell departing from it as with `"observed"`): the
#'   two err in partly different ways (on Kang the decoder under-predicts
#'   the monocytes' response, the other types' observed change misses each
#'   type's own), so their average is nearer the truth than either. Models
#'   saved before the observed response hold no mean expression: ask them
#'   for `"model"`, or train them again.
#'   Measured with a `"vae"` at package defaults: on Kang 2018 (six cell
#'   types' stimulated cells held out in turn,
#'   `inst/scripts/perturbation_kang.R`, means over the types; squared
#'   Pearson of mean expression all genes / top-100 DEGs, delta Pearson all
#'   genes / top-100 DEGs, top-100 DEG overlap, energy distance) `"both"`
#'   0.943 / 0.878 / 0.869 / 0.946 / 0.698 / 1.67, `"observed"` 0.935 /
#'   0.862 / 0.850 / 0.933 / 0.670 / 1.63, `"model"` 0.933 / 0.846 / 0.849
#'   / 0.933 / 0.650 / 2.04, the weighted mean shift 0.934 / 0.843 / 0.845 /
#'   0.918 / 0.648 / 1.70. The halfway weight was chosen on Kang (mixing
#'   the two mean changes at a quarter and three quarters of the model's
#'   gave 0.877 and 0.868 over the DEGs) and checked on Papalexi 2021,
#'   where it gains a little in correlation and loses a little in energy
#'   distance. One guide per target held out
#'   (`inst/scripts/perturbation_papalexi.R`; delta Pearson all genes /
#'   top-50 DEGs, DEG overlap, energy distance, perturbation
#'   discrimination): `"both"` 0.379 / 0.477 / 0.354 / 0.177 / 0.302,
#'   `"observed"` 0.377 / 0.476 / 0.341 / 0.172 / 0.281, `"model"` 0.297 /
#'   0.351 / 0.367 / 0.197 / 0.340, the average knock-out 0.263 / 0.352 /
#'   0.332 / 0.393 / 0.5, the target's other guides (an oracle) 0.384 /
#'   0.494 / 0.366 / 0.207 / 0.249. Each target's cells of one replicate
#'   held out (`inst/scripts/perturbation_papalexi_replicates.R`; the first
#'   four): `"both"` 0.333 / 0.418 / 0.327 / 0.183, `"observed"` 0.325 /
#'   0.410 / 0.323 / 0.176, `"model"` 0.284 / 0.336 / 0.355 / 0.217, the mean
#'   shift over the other replicates 0.327 / 0.392 / 0.323 / 0.187.
#' @param seed Seed of the count draws: `NULL` (default) draws it from R's
#'   random number generator; a whole number reproduces.
#' @return A SingleCellExperiment over the model's genes and the cells of `x`
#'   (same names) with assays `counts` and `logcounts`, and colData: the new
#'   condition (named after the model's condition; one column per covariate),
#'   `transferred_from` (the cell's own; for several covariates their
#'   combination, e.g. "B / ctrl") and `library_size`.
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "state_mlp", condition = "cell_type", epochs = 2, hidden = 64,
#'                               n_layers = 1)
#' b_cells <- sce[, sce$cell_type == "B"]
#' as_nk <- transfer_cells(model, b_cells, to = "NK", steps = 20, seed = 1)
#' table(droplevels(as_nk$transferred_from), droplevels(as_nk$cell_type))
#' @export
transfer_cells <- function(model, x, to, ...) UseMethod("transfer_cells")

#' @rdname transfer_cells
#' @export
transfer_cells.default <- function(model, x, to, from = NULL, assay = NULL, steps = 50, method = NULL,
                                   guidance_scale = 1, mode = NULL, seed = NULL, batch_size = 256,
                                   stand_ins = NULL, stand_in_weight = 1, noise = NULL,
                                   precision = c("float32", "bfloat16"), shift_bandwidth = NULL,
                                   response = NULL, ...) {
  .reject_unknown_arguments(list(...), "transfer_cells")
  precision <- .sampling_precision(precision)
  if (inherits(model, "exprflow_dynamics_baseline")) .check_dynamics_model(model, "transfer_cells")
  pointer <- .model_pointer(model)
  if (!isTRUE(model$trained)) stop("the model has not been trained yet", call. = FALSE)
  covariates <- model$covariates
  if (!length(covariates)) {
    stop("transfer_cells() needs a conditional model (fit with `condition =`)", call. = FALSE)
  }
  if (!is.null(method)) {
    .check_string(method, "method")
    if (!method %in% c("euler", "heun", "ddim")) {
      stop(sprintf("`method` must be NULL, \"euler\", \"heun\" or \"ddim\" (deterministic samplers invert); got \"%s\"",
                   method), call. = FALSE)
    }
  }
  .check_count(steps, "steps")
  guidance <- .guidance_option(model, guidance_scale)
  # The "vae" has no flow to invert: its only transfer that changes cells
  # (unless its decoder reads the condition) is the latent shift.
  if (is.null(mode)) mode <- if (identical(model$architecture, "vae")) "shift" else "joint"
  .check_string(mode, "mode")
  mode <- match.arg(mode, c("joint", "marginal", "contrast", "shift"))
  if (mode == "shift" && !identical(model$space, "latent")) {
    stop(sprintf("`mode = \"shift\"` needs a latent model (\"vae\", \"latent_mlp\", ...); \"%s\" models expression directly",
                 model$architecture), call. = FALSE)
  }
  noise <- .transfer_noise(model, noise)
  response <- .transfer_response(response, mode, noise)
  if (!is.null(stand_ins) && mode != "shift") {
    stop("`stand_ins` choose the stand-ins of unseen targets, which only `mode = \"shift\"` has", call. = FALSE)
  }
  if (!identical(stand_in_weight, 1)) {
    if (mode != "shift") {
      stop("`stand_in_weight` weighs the stand-ins of unseen targets, which only `mode = \"shift\"` has", call. = FALSE)
    }
    if (!identical(stand_in_weight, "validated")) {
      if (!is.numeric(stand_in_weight) || length(stand_in_weight) != 1L || is.na(stand_in_weight) ||
          stand_in_weight < 0 || stand_in_weight > 1) {
        stop("`stand_in_weight` must be a number in [0, 1] or \"validated\"", call. = FALSE)
      }
    }
  }
  if (!is.null(shift_bandwidth) && mode != "shift") {
    stop("`shift_bandwidth` weighs the contexts of the latent shift, which only `mode = \"shift\"` has", call. = FALSE)
  }
  shift_bandwidth <- .shift_bandwidth(shift_bandwidth)
  p <- model$perturbation
  if (!is.null(stand_ins) && is.null(p)) {
    stop("`stand_ins` needs a model with a perturbation covariate (`perturbation =`)", call. = FALSE)
  }
  terms <- .stand_in_terms(stand_ins)
  if (!is.null(terms) && !any(p$members %in% terms$gene)) {
    stop(sprintf("`stand_ins` names none of the model's trained targets (%s): no target could stand in",
                 .first_few(p$members)), call. = FALSE)
  }
  seed <- .sampling_seed(seed)
  .check_count(batch_size, "batch_size")
  input <- .input_with_own_covariates(model, x, assay, from)
  if (is.null(from)) {
    missing <- setdiff(names(covariates), colnames(input$covariates))
    if (length(missing)) {
      stop(sprintf("`x` has no column(s) %s (the model's condition): give the cells' own condition in `from`",
                   paste0("'", missing, "'", collapse = ", ")), call. = FALSE)
    }
  }
  input$table <- .covariate_table(model, input$own, input$n_cells, "from")
  from_table <- input$table
  # The latent shift may move cells to a perturbation target no training
  # cell has, when it is a measured gene (stand-ins: co-expressed targets)
  # or one that `stand_ins` names (stand-ins: targets sharing its terms).
  unseen <- if (mode == "shift") union(model$genes, terms$gene) else character()
  to_table <- .transfer_targets(model, to, from_table, unseen)
  options <- list(steps = steps, method = method %||% "default", guidance_scale = guidance, transfer = mode,
                  transfer_noise = noise, transfer_response = response, seed = seed, batch_size = batch_size,
                  precision = precision, stand_in_weight = if (identical(stand_in_weight, "validated")) -1 else as.numeric(stand_in_weight))
  options <- c(options, shift_bandwidth)
  if (!is.null(terms)) {
    # Only the genes the core can compare: trained targets and those asked for
    # (some trained target is among them, so the core compares by terms).
    asked <- unlist(lapply(unique(to_table[[p$covariate]]), .perturbation_members, control = p$control))
    terms <- terms[terms$gene %in% c(p$members, asked), , drop = FALSE]
    options <- c(options, list(stand_in_genes = terms$gene, stand_in_terms = terms$term))
  }
  out <- .cpp_model_transfer(pointer, input$source, .covariate_codes(model, from_table),
                             .covariate_codes(model, to_table), options)
  sce <- .generated_sce(out$counts, to_table, model$genes, model$condition, covariates,
                        list(steps = steps, method = method %||% model$default_sampler,
                             guidance_scale = guidance_scale, mode = mode, noise = noise, response = response,
                             seed = seed),
                        cells = input$cells)
  # One covariate: the model's levels, as the condition column has them.
  from_levels <- input$condition
  if (length(covariates) == 1L && all(levels(from_levels) %in% covariates[[1L]])) {
    from_levels <- factor(as.character(from_levels), levels = covariates[[1L]])
  }
  sce$transferred_from <- from_levels
  sce
}

# `response` of transfer_cells(), checked against the mode and noise it needs.
# NULL: "both" where it applies (the latent shift keeping each cell's
# noise), else "model".
.transfer_response <- function(response, mode, noise) {
  if (is.null(response)) return(if (mode == "shift" && noise == "cell") "both" else "model")
  .check_response(response)
  if (response != "model" && mode != "shift") {
    stop(sprintf("`response = \"%s\"` anchors the latent shift: it needs `mode = \"shift\"`, not \"%s\"", response,
                 mode), call. = FALSE)
  }
  if (response != "model" && noise != "cell") {
    stop(sprintf("`response = \"%s\"` moves each cell's own counts: it needs `noise = \"cell\"`", response),
         call. = FALSE)
  }
  response
}

# A response named by transfer_cells() or generate_cells(): one of the three.
.check_response <- function(response) {
  .check_string(response, "response")
  if (!response %in% c("model", "observed", "both")) {
    stop(sprintf("`response` must be NULL, \"model\", \"observed\" or \"both\"; got \"%s\"", response),
         call. = FALSE)
  }
}

# `noise` of transfer_cells(): how a latent model's moved cells get their
# counts. NULL: "cell" for latent models, "drawn" (the only one) otherwise.
.transfer_noise <- function(model, noise) {
  if (is.null(noise)) return(if (identical(model$space, "latent")) "cell" else "drawn")
  .check_string(noise, "noise")
  if (!noise %in% c("cell", "drawn")) {
    stop(sprintf("`noise` must be NULL, \"cell\" or \"drawn\"; got \"%s\"", noise), call. = FALSE)
  }
  if (noise == "cell" && !identical(model$space, "latent")) {
    stop(sprintf("`noise = \"cell\"` needs a latent model (\"vae\", \"latent_mlp\", ...): \"%s\" has no count law to carry counts through",
                 model$architecture), call. = FALSE)
  }
  noise
}

# `stand_ins` of transfer_cells() as (gene, term) pairs: NULL (co-expression:
# no terms); gene sets (a named list of gene vectors, e.g. read_gmt()): each
# gene's sets; a regulatory network (a data.frame with columns regulator and
# target, e.g. read_grn()): each gene's closed neighbourhood, itself, its
# regulators and its targets.
.stand_in_terms <- function(stand_ins) {
  if (is.null(stand_ins)) return(NULL)
  if (is.data.frame(stand_ins)) {
    columns <- match(c("regulator", "target"), tolower(names(stand_ins)))
    if (anyNA(columns)) {
      stop("`stand_ins` as a network needs columns 'regulator' and 'target' (as read_grn() gives)", call. = FALSE)
    }
    from <- as.character(stand_ins[[columns[1]]])
    to <- as.character(stand_ins[[columns[2]]])
    keep <- !is.na(from) & !is.na(to) & nzchar(from) & nzchar(to)
    if (!any(keep)) stop("`stand_ins` holds no edges", call. = FALSE)
    genes <- unique(c(from[keep], to[keep]))
    pairs <- data.frame(gene = c(from[keep], to[keep], genes), term = c(to[keep], from[keep], genes),
                        stringsAsFactors = FALSE)
    return(unique(pairs))
  }
  sets_named <- is.list(stand_ins) && length(stand_ins) && !is.null(names(stand_ins)) &&
    all(nzchar(names(stand_ins))) && !anyNA(names(stand_ins))
  if (!sets_named || !all(vapply(stand_ins, is.character, logical(1)))) {
    stop("`stand_ins` must be NULL (co-expression), a named list of gene sets (e.g. read_gmt()) or a data.frame ",
         "of regulator -> target edges (e.g. read_grn())", call. = FALSE)
  }
  pairs <- data.frame(gene = unlist(stand_ins, use.names = FALSE),
                      term = rep(names(stand_ins), lengths(stand_ins)), stringsAsFactors = FALSE)
  pairs <- unique(pairs[!is.na(pairs$gene) & nzchar(pairs$gene), , drop = FALSE])
  if (!nrow(pairs)) stop("`stand_ins` holds no genes", call. = FALSE)
  pairs
}

# The covariates every cell moves to: `to` as one level or one per cell (a
# model of one covariate), or a data.frame with some of the model's
# covariates as columns and one row (every cell) or one per cell; covariates
# `to` leaves out keep the cell's own (`from_table`).
.transfer_targets <- function(model, to, from_table, unseen_members = character()) {
  n_cells <- nrow(from_table)
  if (!is.data.frame(to)) {
    if (length(model$covariates) > 1L) {
      stop(sprintf("the model has several covariates (%s): give `to` as a data.frame with the ones to change",
                   .first_few(names(model$covariates))), call. = FALSE)
    }
    # Levels of a logical or whole-number covariate are given as such (TRUE, 10), as generate_cells() takes them.
    if (is.factor(to) || is.logical(to) || is.numeric(to)) to <- as.character(to)
    if (!is.character(to) || anyNA(to) || !length(to) %in% c(1L, n_cells)) {
      stop(sprintf("`to` must give one condition level, or one per cell (%d), without NA", n_cells), call. = FALSE)
    }
    to <- stats::setNames(data.frame(rep_len(to, n_cells), stringsAsFactors = FALSE), model$condition)
  }
  if (!ncol(to)) stop("`to` has no columns: name the covariates to change", call. = FALSE)
  table <- .covariate_table(model, to, n_cells, "to", unseen_members)
  kept <- setdiff(names(model$covariates), names(to))
  for (name in kept) table[[name]] <- from_table[[name]]
  # A perturbation kept as it was keeps its doses too.
  dose_column <- model$perturbation$dose_column
  if (!is.null(dose_column) && model$perturbation$covariate %in% kept) table[[dose_column]] <- from_table[[dose_column]]
  table
}
