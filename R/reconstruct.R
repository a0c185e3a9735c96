# Reconstruction: observed cells noised part-way into the diffusion and
# denoised back by the model (SDEdit-style), with the NB likelihood of the
# observed counts under the reconstruction.

#' Reconstruct observed cells with a trained model
#'
#' Each cell's log-normalised expression is noised to `noise_level` (a
#' fraction of the diffusion: 0 keeps the cell, 1 forgets it entirely) and
#' denoised back with the model's sampler (EMA weights), conditioned on the
#' cell's own condition when the model is conditional. The reconstruction is
#' turned into expected counts with the cell's observed library size, and the
#' observed counts are scored under the model's negative binomial (per-gene
#' dispersions estimated on the training cells).
#'
#' The log-likelihood is that of the observed counts given a noisy copy of the
#' same cell: it measures how much of a cell the model restores, and is
#' comparable between models at the same `noise_level`; it is not the marginal
#' likelihood of the cell (see [compare_models()] for the baselines' held-out
#' likelihood).
#'
#' VAE-based models (`"vae"`, `"latent_mlp"`, `"latent_dit"`) reconstruct
#' through their VAE instead: each cell is encoded, its posterior mean
#' decoded, and the expected counts are the decoder's mean for the cell's
#' observed library size (`noise_level`, `steps`, `method` and
#' `guidance_scale` do not apply). `log_likelihood` is then the VAE's
#' likelihood (NB, ZINB or Poisson) of the observed counts given the
#' decoder's parameters at that code. The code is read off the cell itself,
#' so this is a reconstruction likelihood, higher than any model that does
#' not see the cell could reach. `marginal_log_likelihood` is the quantity
#' to compare with [baseline_log_likelihood()] (counts given the cell's
#' library size and its condition): the likelihood of the counts given the
#' library size alone, averaged over the VAE's prior of the code, `log p(x)
#' = log E_{z ~ N(0, I)} p(x | z)`, estimated by importance sampling with
#' the encoder's posterior as the proposal (`importance_samples` draws; the
#' estimate is a lower bound in expectation, which tightens as the draws
#' grow). On 300 held-out PBMC3k cells, a `"vae"` at defaults gave -1555.6
#' nats per cell with one draw, -1549.0 with 100 (what [compare_models()]
#' uses; 2.4 s here, each draw decoding every cell once more, so it is
#' computed only when asked for) and -1547.6 with 1,000; at the code read
#' off each cell, -1536.7.
#'
#' @param model An `exprflow_model`.
#' @param x A SingleCellExperiment, Seurat object or count matrix (genes x
#'   cells) holding every gene of the model (matched by name).
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @param condition For a conditional model: a colData column name or one
#'   level per cell (several covariates: their column names, or a data.frame
#'   with one row per cell). `NULL` uses the model's own condition column(s)
#'   that `x` has, and the unconditional (null) condition for the others.
#' @param noise_level Fraction of the diffusion to noise to, in `[0, 1]`.
#' @param steps,method,guidance_scale Sampler settings, as in [generate_cells()].
#' @param seed Seed of the noise: `NULL` (default) draws it from R's random
#'   number generator (so `set.seed()` applies); a whole number reproduces.
#' @param batch_size Cells per batch.
#' @param precision Of the network's matrix products (the VAE's for
#'   VAE-based models), as in [generate_cells()].
#' @param importance_samples VAE-based models: draws of the code per cell
#'   for `marginal_log_likelihood` (0, the default: not computed; ignored by
#'   other models).
#' @return A SingleCellExperiment over the model's genes and the cells of `x`
#'   with assays `counts` (observed), `reconstructed` (expected counts) and
#'   `reconstructed_logcounts`, and colData columns `log_likelihood` (nats per
#'   cell), for VAE-based models with `importance_samples` above 0
#'   `marginal_log_likelihood` (nats per cell), plus the condition used.
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", condition = "cell_type", epochs = 1,
#'                               n_tokens = 4, token_dim = 16, n_layers = 1, n_heads = 2,
#'                               hidden = 64)
#' rec <- reconstruct_cells(model, sce[, 1:50], noise_level = 0.3, steps = 20)
#' summary(rec$log_likelihood)
#' @export
reconstruct_cells <- function(model, x, assay = NULL, condition = NULL, noise_level = 0.5,
                              steps = 50, method = NULL, guidance_scale = 1, seed = NULL,
                              batch_size = 256, precision = c("float32", "bfloat16"),
                              importance_samples = 0) {
  pointer <- .model_pointer(model)
  precision <- .sampling_precision(precision)
  if (!isTRUE(model$trained)) stop("the model has not been trained yet", call. = FALSE)
  method <- if (identical(model$space, "latent")) model$default_sampler else .sampler_method(method, model)
  .check_number(noise_level, "noise_level", 0, 1)
  .check_count(steps, "steps")
  seed <- .sampling_seed(seed)
  .check_count(batch_size, "batch_size")
  .check_count(importance_samples, "importance_samples", min = 0)
  input <- .input_with_covariates(model, x, assay, condition)
  codes <- .covariate_codes(model, input$table)
  options <- list(noise_level = noise_level, steps = steps, method = method,
                  guidance_scale = .guidance_option(model, guidance_scale), seed = seed,
                  batch_size = batch_size, precision = precision)
  if (identical(model$space, "latent")) options$importance_samples <- importance_samples
  out <- .cpp_model_reconstruct(pointer, input$source, codes, options)
  counts <- if (.is_file_input(x)) {
    # The observed counts of an .h5 / .h5ad file, read through its source
    # (the model's genes, in its order).
    observed <- .cpp_source_minibatch(input$source, seq_len(input$n_cells), FALSE)
    dimnames(observed) <- list(model$genes, input$cells)
    methods::as(observed, "CsparseMatrix")
  } else {
    .align_genes(.counts_and_covariates(x, assay)$counts, model$genes, "x")
  }
  dimnames(out$expected_counts) <- dimnames(out$logcounts) <- list(model$genes, input$cells)
  col_data <- S4Vectors::DataFrame(log_likelihood = out$log_likelihood, row.names = input$cells)
  if (!is.null(out$marginal_log_likelihood)) col_data$marginal_log_likelihood <- out$marginal_log_likelihood
  for (name in names(model$covariates)) {
    if (!all(is.na(input$table[[name]]))) {
      col_data[[name]] <- factor(input$table[[name]], levels = model$covariates[[name]])
    }
  }
  sce <- SingleCellExperiment::SingleCellExperiment(
    assays = list(counts = counts, reconstructed = out$expected_counts,
                  reconstructed_logcounts = out$logcounts),
    colData = col_data)
  S4Vectors::metadata(sce)$exprflow <- list(noise_level = noise_level, steps = steps, method = method,
                                            seed = seed)
  sce
}
