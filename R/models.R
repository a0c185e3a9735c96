# The exprflow_model object: an R handle on a C++ model. The C++ state lives
# behind an external pointer inside an environment, beside the model file's
# bytes (raw, checksummed): a handle restored by readRDS() (its pointer is then
# dead) rebuilds its C++ state from its own bytes, so it is always itself,
# whatever happened to any file since.

# `raw`: the model's bytes when the caller has them (a file just read),
# else serialised from the pointer.
.new_model <- function(pointer, raw = .cpp_model_to_raw(pointer)) {
  state <- new.env(parent = emptyenv())
  state$pointer <- pointer
  state$raw <- raw
  model <- structure(list(state = state), class = "exprflow_model")
  .refresh_model(model)
}

# Copies the C++ model's description into the R object (cheap fields only).
.refresh_model <- function(model) {
  info <- .cpp_model_info(model$state$pointer)
  notes <- .cpp_model_annotations(model$state$pointer)
  # `covariates`: each covariate's levels, named by its column. A model of
  # one covariate also has `condition` (its column) and `levels`, as every
  # function written for one condition reads them; a model of several has
  # `condition` (their columns) and no `levels`.
  covariates <- info$covariates
  if (length(covariates) == 1L) names(covariates) <- notes$condition_column %||% "condition"
  keys <- if (length(covariates) == 1L) covariates[[1L]] else
    unlist(lapply(names(covariates), function(n) paste0(n, "=", covariates[[n]])))
  counts <- vapply(keys, function(k) {
    v <- notes[[paste0("level_count:", k)]]
    if (is.null(v)) NA_real_ else as.numeric(v)
  }, numeric(1))
  model$architecture <- info$spec$architecture
  model$spec <- info$spec
  model$genes <- info$genes
  model$covariates <- covariates
  model$condition <- if (length(covariates)) names(covariates) else NULL
  model$levels <- if (length(covariates) == 1L) covariates[[1L]] else character()
  model$level_counts <- stats::setNames(counts, keys)
  # The perturbation covariate ("A+B" labels, a control, doses), or NULL.
  model$perturbation <- .model_perturbation(notes, covariates)
  model$split <- .training_split(notes, keys)
  model$history <- info$history
  model$parameters <- info$parameters
  model$trained <- info$trained
  model$device <- info$device
  model$default_sampler <- info$default_sampler
  model$token_names <- info$token_names  # gene-set tokens have names; others none
  # "gene" (the flow / diffusion runs on expression) or "latent" (a count VAE,
  # with or without a model of its latent codes).
  table <- expression_architectures()
  model$space <- table$space[match(model$architecture, table$name)]
  # The last LoRA fine-tuning (fine_tune()), or NULL.
  model$lora <- if (!is.null(notes$lora_rank)) {
    list(rank = as.integer(notes$lora_rank), trainable = as.numeric(notes$lora_trainable_parameters),
         network = as.numeric(notes$lora_network_parameters))
  }
  model
}

`%||%` <- function(a, b) if (is.null(a)) b else a

# Cells of the last training run's split, per condition level (one row
# "all" for an unconditional model; "<covariate>=<level>" rows for several
# covariates), from the core's annotations; NULL for an untrained model or
# one saved before they were recorded.
.training_split <- function(notes, levels) {
  if (is.null(notes$training_cells)) return(NULL)
  keys <- if (length(levels)) paste0(":", levels) else ""
  count <- function(what) vapply(paste0(what, keys), function(k) as.integer(notes[[k]] %||% NA), 1L)
  data.frame(condition = if (length(levels)) levels else "all", training = count("training_cells"),
             validation = count("validation_cells"), row.names = NULL)
}

# The live pointer of a model, rebuilt from its bytes when the pointer died
# (a model restored by readRDS() or unserialize()).
.model_pointer <- function(model) {
  if (!inherits(model, "exprflow_model")) {
    stop("`model` must be an exprflow_model (from fit_expression_model() or load_model())", call. = FALSE)
  }
  state <- model$state
  if (.cpp_pointer_alive(state$pointer)) return(state$pointer)
  if (!is.raw(state$raw)) {
    stop("this model object holds no model (it was built by an exprflow version that did not keep the ",
         "model in the object); load it from its file with load_model()", call. = FALSE)
  }
  # (Unserialising untrusted data is unsafe in R itself.)
  state$pointer <- .model_copy(model)
  state$pointer
}

# A new C++ model from the object's own bytes (any format version: whoever
# read this object from an RDS file has trusted that file already). Functions
# that return a changed model (fine_tune(), load_adapter()) change a copy, as
# R functions do.
.model_copy <- function(model) .cpp_model_from_raw(model$state$raw, "the model object's saved state", TRUE)

#' @export
print.exprflow_model <- function(x, ...) {
  cat("<exprflow_model> ", x$architecture, if (!isTRUE(x$trained)) " (untrained)", "\n", sep = "")
  cat("  genes      : ", length(x$genes), "\n", sep = "")
  if (length(x$covariates)) {
    for (name in names(x$covariates)) {
      levels <- x$covariates[[name]]
      if (identical(name, x$perturbation$covariate)) {
        p <- x$perturbation
        cat("  perturbed  : ", name, " (", length(p$members), " perturbations in ", length(levels) - 1L,
            " combinations; control \"", p$control, "\"", if (!is.null(p$dose_column))
              paste0("; doses from '", p$dose_column, "'"), ")\n", sep = "")
        next
      }
      cat("  condition  : ", name, " (", length(levels), " levels: ",
          paste(utils::head(levels, 6), collapse = ", "), if (length(levels) > 6) ", ...", ")\n", sep = "")
    }
  } else {
    cat("  condition  : none (unconditional)\n")
  }
  if (length(x$token_names)) {
    extra <- intersect(c("residual_genes", "summary"), x$token_names)
    sets <- setdiff(x$token_names, extra)
    cat("  tokens     : ", length(sets), " gene sets (", paste(utils::head(sets, 3), collapse = ", "),
        if (length(sets) > 3) ", ...", ")", paste0(" + ", extra, collapse = ""), "\n", sep = "")
  }
  cat("  parameters : ", format(x$parameters, big.mark = ","), "\n", sep = "")
  if (!is.null(x$lora)) {
    cat(sprintf("  LoRA       : rank %d, %s of the network's %s parameters fine-tuned\n", x$lora$rank,
                format(x$lora$trainable, big.mark = ","), format(x$lora$network, big.mark = ",")))
  }
  h <- x$history
  if (NROW(h)) {
    # One line per training stage (VAE-based models train "vae", then "latent").
    stages <- unique(h$stage %||% rep("model", nrow(h)))
    for (stage in stages) {
      rows <- if (is.null(h$stage)) h else h[h$stage == stage, , drop = FALSE]
      last <- rows[nrow(rows), ]
      cat(sprintf("  trained    : %s%s, train loss %.4g, validation loss %s\n",
                  if (length(stages) > 1L) paste0(stage, " ") else "", .count_of(last$epoch, "epoch"),
                  last$train_loss,
                  if (is.na(last$validation_loss)) "n/a" else sprintf("%.4g", last$validation_loss)))
    }
  }
  cat("  device     : ", x$device, "\n", sep = "")
  invisible(x)
}

#' @export
summary.exprflow_model <- function(object, ...) {
  h <- object$history
  structure(list(
    architecture = object$architecture, spec = object$spec, n_genes = length(object$genes),
    split = object$split, levels = object$level_counts, parameters = object$parameters,
    epochs = NROW(h),
    best_validation_loss = if (NROW(h) && any(!is.na(h$validation_loss))) min(h$validation_loss, na.rm = TRUE) else NA,
    training_seconds = sum(h$seconds)
  ), class = "summary.exprflow_model")
}

#' @export
print.summary.exprflow_model <- function(x, ...) {
  cat("exprflow model summary: ", x$architecture, "\n", sep = "")
  cat(sprintf("  %d genes, %s parameters, %s in %.1f s, best validation loss %s\n",
              x$n_genes, format(x$parameters, big.mark = ","), .count_of(x$epochs, "epoch"),
              x$training_seconds,
              if (is.na(x$best_validation_loss)) "n/a" else sprintf("%.4g", x$best_validation_loss)))
  if (!is.null(x$split)) {
    cat("  cells (training / validation):\n")
    print(x$split, row.names = FALSE)
  } else if (length(x$levels)) {
    cat("  input cells per condition (training and validation):\n")
    print(x$levels)
  }
  cat("  settings:\n")
  spec <- x$spec[setdiff(names(x$spec), c("architecture"))]
  cat(paste0("    ", names(spec), " = ", vapply(spec, format, ""), collapse = "\n"), "\n")
  invisible(x)
}
