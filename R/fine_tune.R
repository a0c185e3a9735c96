# LoRA fine-tuning of a trained model on new cells, and adapter files.

#' Fine-tune a trained model with LoRA adapters
#'
#' Continues training a model on new cells (another sample, donor,
#' technology) through low-rank adapters (LoRA): every linear layer of the
#' denoising network (`layers = "all"`: gene encoder and decoder too), or of
#' its backbone only (`"backbone"`: attention projections, MLPs, adaLN / FiLM
#' modulation), gets a trainable update `(alpha / rank) B A` of rank `rank`
#' beside its frozen weight; nothing else is trained, and at the end the
#' update is merged into the weights, so the fine-tuned model samples as fast
#' as the original. Latent models adapt their flow (their VAE, and so the
#' latent codes, stay as they were); the `"vae"` alone has no flow to adapt.
#'
#' The model's gene scaling and library sizes stay those of its first
#' training (so that the network's inputs keep their meaning); the range
#' generated values are clipped to widens to the new cells'. `model` itself is
#' left unchanged: the result is a new model.
#'
#' The new cells may have condition levels the model never saw (a new cell
#' type, donor, perturbation): the model first gets them (their embeddings
#' start as the covariate's unconditional one), and the adapters train them,
#' as the condition embedding tables get an update of their own beside the
#' linear layers'. Give cells of the known levels too: fine-tuned on a new
#' level alone, the network drifts towards it (in the package's test, a
#' type's own programme was lost). An adapter trained with new levels
#' applies to the model with those levels, not to the original: save the
#' whole model. The number of trainable parameters against the network's is
#' printed with the model and kept in `model$lora`.
#'
#' @param model A trained `exprflow_model`.
#' @param x The new cells: as for [fit_expression_model()], over the model's
#'   genes (others are dropped; missing ones are zero).
#' @param condition The cells' condition: `NULL` (default) reads the model's
#'   condition column(s) from `x` where it has them; otherwise as in
#'   [fit_expression_model()].
#' @param rank Rank of the adapters (a whole number, at least 1).
#' @param alpha Scale of the update, `alpha / rank` (default `rank`: 1).
#' @param layers Which linear layers get adapters: `"all"` (default) or the
#'   `"backbone"`'s. A shift of some genes' expression (a batch or technology
#'   effect) needs the gene-facing layers: on the example data (a
#'   `"state_mlp"` fitted on 600 cells, fine-tuned at rank 4 on 600 others
#'   whose 20 genes ranked 21-40 by mean were raised four-fold), generated
#'   CD4 T cells' mean log expression of those genes rose by 0.96 with
#'   `"all"` and by 0.14 with `"backbone"`.
#' @param epochs,batch_size,learning_rate,validation_fraction,patience,seed,verbose,training
#'   Training settings, as for [fit_expression_model()] (`NULL`: the
#'   architecture's defaults).
#' @inheritParams reconstruct_cells
#' @return The fine-tuned `exprflow_model`; `model$lora` holds `rank`,
#'   `trainable` (adapter parameters) and `network` (the adapted network's
#'   parameters). Its history continues the original's, in stage `"lora"`.
#'   [save_model()] with `adapter_only = TRUE` writes the adapter alone, which
#'   [load_adapter()] applies to the original model.
#' @examples
#' sce <- example_pbmc()
#' model <- fit_expression_model(sce[, 1:300], "state_mlp", condition = "cell_type", epochs = 2,
#'                               hidden = 64, n_layers = 1)
#' tuned <- fine_tune(model, sce[, 301:600], rank = 4, epochs = 2)
#' tuned$lora
#' @export
fine_tune <- function(model, x, condition = NULL, assay = NULL, rank = 8, alpha = rank,
                      layers = c("all", "backbone"), epochs = NULL,
                      batch_size = NULL, learning_rate = NULL, validation_fraction = 0.1, patience = NULL,
                      seed = 1, verbose = interactive(), training = list()) {
  .model_pointer(model)
  if (!isTRUE(model$trained)) stop("fine_tune() needs a trained model; fit it first", call. = FALSE)
  .check_count(rank, "rank")
  layers <- match.arg(layers)
  .check_number(alpha, "alpha", lower = 0)
  if (alpha <= 0) stop("`alpha` must be positive", call. = FALSE)
  options <- .training_options(epochs, batch_size, learning_rate, validation_fraction, patience, seed, training,
                                extra = list(lora_rank = rank, lora_alpha = alpha, lora_layers = layers))

  input <- .input_with_own_covariates(model, x, assay, condition)
  model <- .with_new_levels(model, input$own)
  input$table <- .covariate_table(model, input$own, input$n_cells, "condition")
  pointer <- .model_copy(model)
  report <- .train_with_progress(pointer, input, .covariate_codes(model, input$table), options, verbose)
  if (report$interrupted) {
    warning(sprintf("fine-tuning was interrupted after %d steps; returning the model tuned so far",
                    as.integer(report$steps)), call. = FALSE)
  }
  tuned <- .new_model(pointer)
  if (verbose) {
    message(sprintf("LoRA rank %d: %s of the network's %s parameters trained (%.2f%%)", tuned$lora$rank,
                    format(tuned$lora$trainable, big.mark = ","), format(tuned$lora$network, big.mark = ","),
                    100 * tuned$lora$trainable / tuned$lora$network))
  }
  tuned
}

#' Apply a saved LoRA adapter to the model it was fine-tuned from
#'
#' An adapter file (`save_model(tuned, path, adapter_only = TRUE)`) holds
#' only what [fine_tune()] learnt: it is small, and turns the original model
#' into the fine-tuned one. It is refused for any other model, or for the
#' original after it was changed.
#'
#' @param model The `exprflow_model` the adapter was fine-tuned from.
#' @param path The adapter file.
#' @return The fine-tuned `exprflow_model` (`model` itself is unchanged).
#' @examples
#' sce <- example_pbmc()
#' model <- fit_expression_model(sce[, 1:300], "state_mlp", condition = "cell_type", epochs = 2,
#'                               hidden = 64, n_layers = 1)
#' tuned <- fine_tune(model, sce[, 301:600], rank = 4, epochs = 2)
#' path <- tempfile(fileext = ".lora")
#' save_model(tuned, path, adapter_only = TRUE)
#' again <- load_adapter(model, path)
#' @export
load_adapter <- function(model, path) {
  .model_pointer(model)
  .check_string(path, "path")
  if (!file.exists(path) || dir.exists(path)) stop(sprintf("adapter file '%s' does not exist", path), call. = FALSE)
  raw <- readBin(path.expand(path), "raw", file.size(path))
  pointer <- .model_copy(model)
  .cpp_model_apply_adapter(pointer, raw, path)
  .new_model(pointer)
}

# The model with the levels of the cells' own covariate values (`own`,
# .input_with_own_covariates()) that it lacks added after its own (the same
# model when there are none): what fine_tune() trains.
.with_new_levels <- function(model, own) {
  perturbation <- model$perturbation
  grown <- lapply(names(model$covariates), function(name) {
    levels <- model$covariates[[name]]
    if (!name %in% names(own)) return(levels)
    values <- own[[name]]
    if (identical(name, perturbation$covariate)) {
      values <- .canonical_perturbations(values, perturbation$control)$labels
    }
    c(levels, setdiff(unique(stats::na.omit(values)), levels))
  })
  if (identical(lengths(grown), lengths(model$covariates))) return(model)
  .new_model(.cpp_model_with_levels(.model_pointer(model), grown))
}
