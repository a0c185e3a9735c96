#' Save and load models
#'
#' `save_model()` writes the model to one file: its weights (training and
#' EMA), the JSON description of its composition, gene names, condition
#' levels, per-gene scaling and dispersions, training library sizes and
#' history, in a checksummed envelope with its format version (a truncated or
#' corrupted file is refused with an error). The file is written to a
#' temporary name and then renamed, so an interrupted save never leaves half a
#' model. `load_model()` restores it bit for bit: the same seed then generates
#' the same cells.
#'
#' A model object also carries those bytes itself, so `saveRDS()` /
#' `readRDS()` (or saving an R session) keep a working model without
#' `save_model()`: the restored object rebuilds its C++ state from its own
#' bytes on first use.
#'
#' Files are written in exprflow's own tensor format, which the reader checks
#' field by field and never executes. Model files saved by earlier exprflow
#' versions hold a LibTorch (TorchScript) archive instead, whose reader a
#' crafted file can crash; `load_model()` refuses them unless
#' `trust_legacy = TRUE`. Load a file you trust that way once and save it
#' again with `save_model()`: the new file is in the current format. (A model
#' object restored by `readRDS()` is read whatever its format: reading an RDS
#' file already trusts its source.)
#'
#' @param model An `exprflow_model`, or a time-course model or baseline
#'   ([fit_dynamics_model()], [fit_dynamics_baseline()]) or a baseline of
#'   [fit_baseline()]: those are R objects (a time-course model keeps its
#'   populations) and are written as an RDS file (also by temporary name and
#'   rename), which `load_model()` recognises.
#' @param path File path.
#' @param adapter_only `TRUE` writes only the LoRA adapter of the model's
#'   last [fine_tune()] (an error for a model never fine-tuned), which
#'   [load_adapter()] applies to the original model. Default `FALSE`.
#' @param trust_legacy `TRUE` to read a model file saved by an earlier
#'   exprflow in the LibTorch archive format (only for files whose origin you
#'   trust; see Details). Default `FALSE`.
#' @return `save_model()`: the model, invisibly.
#'   `load_model()`: an `exprflow_model` (or the time-course model or
#'   baseline, or the baseline, the file holds).
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", epochs = 1, n_tokens = 4,
#'                               token_dim = 16, n_layers = 1, n_heads = 2, hidden = 64)
#' path <- tempfile(fileext = ".exprflow")
#' save_model(model, path)
#' restored <- load_model(path)
#' @export
save_model <- function(model, path, adapter_only = FALSE) {
  if (inherits(model, .r_object_models)) {
    .check_string(path, "path")
    if (!isFALSE(adapter_only)) stop("`adapter_only`: only a fine-tuned exprflow_model has a LoRA adapter", call. = FALSE)
    return(invisible(.save_r_object_model(model, path.expand(path))))
  }
  pointer <- .model_pointer(model)  # checks `model`; a damaged object's bytes are refused here
  .check_string(path, "path")
  .check_flag(adapter_only, "adapter_only")
  if (adapter_only) {
    .cpp_write_model_raw(.cpp_model_adapter_raw(pointer), path.expand(path))
    return(invisible(model))
  }
  # The object's own bytes: the file is exactly what it carries.
  .cpp_write_model_raw(model$state$raw, path.expand(path))
  invisible(model)
}

#' @rdname save_model
#' @export
load_model <- function(path, trust_legacy = FALSE) {
  .check_string(path, "path")
  .check_flag(trust_legacy, "trust_legacy")
  if (!file.exists(path)) stop(sprintf("model file '%s' does not exist", path), call. = FALSE)
  if (dir.exists(path)) stop(sprintf("'%s' is a folder, not a model file", path), call. = FALSE)
  path <- path.expand(path)
  raw <- readBin(path, "raw", file.size(path))
  if (length(raw) >= 2L && identical(raw[1:2], as.raw(c(0x1f, 0x8b)))) return(.load_r_object_model(path))
  pointer <- .cpp_model_from_raw(raw, path, trust_legacy)
  # The object keeps the current format's bytes, so that save_model() converts a legacy file.
  if (trust_legacy) raw <- .cpp_model_to_raw(pointer)
  .new_model(pointer, raw)
}

# Time-course models and baselines, and the baselines of fit_baseline(), are
# R objects (their populations, PCA, parameters and, for a time-course
# model, the velocity field's bytes): written as an RDS file under a
# temporary name in the same folder, then renamed, like every model file.
.r_object_models <- c("exprflow_dynamics_model", "exprflow_dynamics_baseline", "exprflow_baseline")

.save_r_object_model <- function(model, path) {
  folder <- dirname(path)
  if (!dir.exists(folder)) stop(sprintf("`path`: folder '%s' does not exist", folder), call. = FALSE)
  temporary <- tempfile(".exprflow-", tmpdir = folder)
  on.exit(unlink(temporary))
  saveRDS(model, temporary)
  if (!file.rename(temporary, path)) stop(sprintf("could not write model file '%s'", path), call. = FALSE)
  model
}

.load_r_object_model <- function(path) {
  model <- tryCatch(readRDS(path), error = function(e) {
    stop(sprintf("model file '%s' is damaged or truncated (%s)", path, conditionMessage(e)), call. = FALSE)
  })
  if (!inherits(model, .r_object_models)) {
    stop(sprintf("'%s' is an R data file, not an exprflow model", path), call. = FALSE)
  }
  # The velocity field's own checksummed bytes are checked by reading them.
  if (inherits(model, "exprflow_dynamics_model") && isTRUE(model$trained)) {
    if (!is.null(model$vae)) .model_pointer(model$vae)  # the encoder's bytes, checked the same way
    origin <- matrix(0, 1L, .field_dims(model))
    .cpp_dynamics_trajectories(model$raw, origin, model$times[1], 1L, 0L)
  }
  model
}
