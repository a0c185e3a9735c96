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
#'   new condition and draw counts from the likelihood. The `"vae"` alone
#'   decodes the code under the new condition (which changes the cell only
#'   when the decoder sees the condition, `decode_condition = 1`).
#'
#' Every cell keeps its observed library size. Inverting under the cell's own
#' condition and generating under the same one returns the cell, up to the
#' sampler's discretisation error (more `steps` shrink it).
#'
#' @inheritParams reconstruct_cells
#' @param to The condition to move the cells to: one level (every cell), one
#'   level per cell, or a data.frame with a column named after the model's
#'   condition and one row (every cell) or one row per cell.
#' @param from The cells' own condition: a colData column name or one level
#'   per cell. `NULL` reads the model's condition column from `x`.
#' @param steps,method Deterministic sampler settings (as in
#'   [generate_cells()]): `method` `NULL` (the model's own: Euler for flows,
#'   DDIM for DDPM), `"euler"`, `"heun"` or `"ddim"` (with no noise).
#' @param guidance_scale Classifier-free guidance, used both ways (1: none;
#'   inverting with strong guidance is unstable).
#' @param seed Seed of the count draws: `NULL` (default) draws it from R's
#'   random number generator; a whole number reproduces.
#' @return A SingleCellExperiment over the model's genes and the cells of `x`
#'   (same names) with assays `counts` and `logcounts`, and colData: the new
#'   condition (named after the model's condition), `transferred_from` (the
#'   cell's own) and `library_size`.
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "state_mlp", condition = "cell_type", epochs = 2, hidden = 64,
#'                               n_layers = 1)
#' b_cells <- sce[, sce$cell_type == "B"]
#' as_nk <- transfer_cells(model, b_cells, to = "NK", steps = 20, seed = 1)
#' table(droplevels(as_nk$transferred_from), droplevels(as_nk$cell_type))
#' @export
transfer_cells <- function(model, x, to, from = NULL, assay = NULL, steps = 50, method = NULL,
                           guidance_scale = 1, seed = NULL, batch_size = 256) {
  pointer <- .model_pointer(model)
  if (!isTRUE(model$trained)) stop("the model has not been trained yet", call. = FALSE)
  if (!length(model$levels)) {
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
  .check_number(guidance_scale, "guidance_scale", lower = 0)
  seed <- .sampling_seed(seed)
  .check_count(batch_size, "batch_size")
  condition <- model$condition %||% "condition"
  if (is.null(from)) {
    covariates <- .counts_and_covariates(x, assay)$covariates
    if (is.null(covariates) || !condition %in% colnames(covariates)) {
      stop(sprintf("`x` has no column '%s' (the model's condition): give the cells' own condition in `from`",
                   condition), call. = FALSE)
    }
    from <- condition
  }
  input <- .expression_input(x, assay, condition = from, genes = model$genes)
  from_codes <- .model_level_codes(model, input$condition, input$n_cells)
  to_levels <- .transfer_targets(to, condition, input$n_cells)
  to_codes <- .model_level_codes(model, to_levels, input$n_cells)
  out <- .cpp_model_transfer(pointer, input$source, from_codes, to_codes,
                             list(steps = steps, method = method %||% "default", guidance_scale = guidance_scale,
                                  seed = seed, batch_size = batch_size))
  sce <- .generated_sce(out$counts, to_levels, model$genes, condition, model$levels,
                        list(steps = steps, method = method %||% model$default_sampler,
                             guidance_scale = guidance_scale, seed = seed),
                        cells = input$cells)
  sce$transferred_from <- factor(as.character(input$condition), levels = model$levels)
  sce
}

# The target level of every cell from `to`: one level, one per cell, or a
# data.frame with the condition column (one row, or one per cell).
.transfer_targets <- function(to, condition, n_cells) {
  if (is.data.frame(to)) {
    if (!condition %in% names(to)) {
      stop(sprintf("the data.frame `to` needs a column '%s' (the model's condition)", condition), call. = FALSE)
    }
    to <- to[[condition]]
  }
  if (is.factor(to)) to <- as.character(to)
  if (!is.character(to) || anyNA(to) || !length(to) %in% c(1L, n_cells)) {
    stop(sprintf("`to` must give one condition level, or one per cell (%d), without NA", n_cells), call. = FALSE)
  }
  rep_len(to, n_cells)
}
