# Checkpoints of fit_expression_model() runs and resume_training().
#
# A checkpoint folder holds two files:
#   checkpoint.exprflow  the core's checkpoint (src/core/train/checkpoint.hpp):
#                        the model, the trainer's state, the stage training
#   call.rds             what the R call was given (the data's path or the
#                        fact that it was in memory, the covariate columns,
#                        the training options), to train on the same cells
# Both are written to a temporary file and renamed over the last one.

.checkpoint_state_file <- "checkpoint.exprflow"
.checkpoint_call_file <- "call.rds"
# The core's training options of checkpoints, which R sets itself.
.checkpoint_settings <- c("checkpoint", "checkpoint_every", "resume")

# The core's checkpoint file in folder `checkpoint` (created if missing), or
# NULL when no checkpoint was asked for; arguments checked.
.checkpoint_start <- function(checkpoint, checkpoint_every) {
  .check_count(checkpoint_every, "checkpoint_every")
  if (is.null(checkpoint)) return(NULL)
  .check_string(checkpoint, "checkpoint")
  if (file.exists(checkpoint) && !dir.exists(checkpoint)) {
    stop(sprintf("`checkpoint`: '%s' is a file; give a folder to keep the checkpoint in", checkpoint),
         call. = FALSE)
  }
  if (!dir.exists(checkpoint) && !dir.create(checkpoint, recursive = TRUE, showWarnings = FALSE)) {
    stop(sprintf("`checkpoint`: could not create folder '%s'", checkpoint), call. = FALSE)
  }
  # A folder used before holds another run's state: a new run starts afresh,
  # so that its call is never paired with the old run's state.
  state <- file.path(normalizePath(checkpoint), .checkpoint_state_file)
  unlink(state)
  state
}

# `processes`, `hosts`, `job`: how the run trained (a resumed run trains on
# as many processes, the checkpoint holding each rank's random state).
.write_checkpoint_call <- function(checkpoint, x, assay, condition, perturbation, control, dose, options, input,
                                   processes = 1L, hosts = NULL, job = NULL) {
  call <- list(format = "exprflow-checkpoint-call", version = 2L,
               # A file is read again from its path; data in memory must be passed again.
               x = if (.is_file_input(x)) normalizePath(x) else NULL,
               assay = assay, condition = condition, perturbation = perturbation, control = control,
               dose = dose, options = options, genes = input$genes, n_cells = input$n_cells,
               fingerprint = .cells_fingerprint(input$source), processes = as.integer(processes),
               hosts = hosts, job = if (!is.null(job)) normalizePath(path.expand(job), mustWork = FALSE))
  path <- file.path(checkpoint, .checkpoint_call_file)
  temporary <- tempfile(".exprflow-", tmpdir = checkpoint)
  on.exit(unlink(temporary))
  saveRDS(call, temporary)
  if (!file.rename(temporary, path)) stop(sprintf("could not write '%s'", path), call. = FALSE)
  invisible(path)
}

# Two numbers that tell the run's cells from others of the same size: the
# sum of the library sizes, and their sum weighted by position (so that the
# same cells in another order differ too). The checkpoint's order holds cell
# indices only; these catch other data of the same shape.
.cells_fingerprint <- function(source) {
  sizes <- .cpp_source_library_sizes(source)
  c(total = sum(sizes), weighted = sum(sizes * (seq_along(sizes) %% 1009 + 1)))
}

.read_checkpoint_call <- function(checkpoint) {
  path <- file.path(checkpoint, .checkpoint_call_file)
  if (!file.exists(path)) {
    stop(sprintf("`checkpoint`: '%s' holds no checkpoint (no %s); fit_expression_model(checkpoint = ) writes one",
                 checkpoint, .checkpoint_call_file), call. = FALSE)
  }
  call <- tryCatch(readRDS(path), error = function(e) {
    stop(sprintf("`checkpoint`: '%s' is damaged (%s)", path, conditionMessage(e)), call. = FALSE)
  })
  if (!is.list(call) || !identical(call$format, "exprflow-checkpoint-call")) {
    stop(sprintf("`checkpoint`: '%s' is not an exprflow checkpoint's call", path), call. = FALSE)
  }
  call
}

#' Continue a training run from its checkpoint
#'
#' A run started with `fit_expression_model(..., checkpoint = folder)` keeps
#' its state in `folder`: the model, the optimiser's moments, the EMA
#' weights, the random generators, the order of the cells and the history,
#' rewritten every `checkpoint_every` epochs, when it is interrupted (Ctrl-C
#' / Esc) and when it ends. `resume_training()` continues that run, in this
#' R session or a new one (after a crash or a killed job), and ends on the
#' same weights as the run left alone with the same seed: bit for bit on the
#' CPU. A latent model resumed during its VAE stage finishes the VAE, then
#' trains the latent model; resumed during the latent stage, it keeps the
#' trained VAE. The resumed run keeps writing its checkpoint to the folder.
#'
#' The training settings are those the run started with (they are kept in
#' the folder); the data must be the same cells and genes: a file's path is
#' kept and read again, data held in memory must be passed as `x`.
#'
#' A run across processes resumes the way it trained: on as many worker
#' processes (`processes`), or on the same `hosts`. A run written as a `job`
#' for a cluster's launcher is not resumed here: start its workers again
#' with the launcher (or let it restart them, e.g. torchrun's
#' `--max-restarts`, or a requeued batch job); [train_worker()] continues
#' from the checkpoint.
#'
#' @param checkpoint The folder given to `fit_expression_model(checkpoint = )`.
#' @param x `NULL` to read the file the run trained on again; for a run on
#'   data held in memory (a SingleCellExperiment, Seurat object or matrix),
#'   the same data.
#' @param verbose Show a progress bar per training stage.
#' @return The trained `exprflow_model`.
#' @examples
#' sce <- example_pbmc()[, 1:200]
#' folder <- file.path(tempdir(), "run")
#' model <- fit_expression_model(sce, "state_mlp", epochs = 2, hidden = 32, n_layers = 1,
#'                               checkpoint = folder)
#' # ... the session ends; later, in another one:
#' resumed <- resume_training(folder, x = sce)
#' @export
resume_training <- function(checkpoint, x = NULL, verbose = interactive()) {
  .check_string(checkpoint, "checkpoint")
  if (!dir.exists(checkpoint)) {
    stop(sprintf("`checkpoint`: folder '%s' does not exist", checkpoint), call. = FALSE)
  }
  checkpoint <- normalizePath(checkpoint)
  state <- file.path(checkpoint, .checkpoint_state_file)
  call <- .read_checkpoint_call(checkpoint)
  if (!is.null(call$job)) {
    stop(sprintf(paste0("`checkpoint`: the run is the job '%s' for a cluster's launcher: start its workers again ",
                        "(exprflow::train_worker()), which continue from this checkpoint"), call$job), call. = FALSE)
  }
  if (!file.exists(state)) {
    stop(sprintf("`checkpoint`: '%s' holds no %s yet: the run stopped before its first checkpoint",
                 checkpoint, .checkpoint_state_file), call. = FALSE)
  }
  if (is.null(x)) {
    if (is.null(call$x)) {
      stop("`x`: the run trained on data held in memory; pass the same data again", call. = FALSE)
    }
    if (!file.exists(call$x)) {
      stop(sprintf("`x`: the run's file '%s' is gone; pass the same data (its new path, or in memory)", call$x),
           call. = FALSE)
    }
    x <- call$x
  }
  prepared <- .training_input(x, call$assay, call$condition, call$perturbation, call$control, call$dose)
  input <- prepared$input
  if (input$n_cells != call$n_cells || !identical(input$genes, call$genes)) {
    stop(sprintf("`x` has %s x %s, the run trained on %s x %s: resume with the same data",
                 .count_of(length(input$genes), "gene"), .count_of(input$n_cells, "cell"),
                 .count_of(length(call$genes), "gene"), .count_of(call$n_cells, "cell")), call. = FALSE)
  }
  if (!is.null(call$fingerprint) && !isTRUE(all.equal(.cells_fingerprint(input$source), call$fingerprint,
                                                      tolerance = 1e-12))) {
    stop("`x`: its cells are not the run's (their counts differ, or come in another order): resume with the same data",
         call. = FALSE)
  }
  pointer <- .cpp_model_from_checkpoint(state)
  stored <- .cpp_model_info(pointer)$covariates
  if (!identical(unname(lapply(stored, as.character)), unname(lapply(prepared$covariates, as.character)))) {
    stop("`x`: its covariate levels differ from those of the run: resume with the same data", call. = FALSE)
  }
  if (isTRUE(verbose)) {  # the checkpoint is read for this message only when it is shown
    info <- .cpp_checkpoint_info(state)
    message(sprintf("Resuming stage '%s' after epoch %d of %d%s", info$stage, as.integer(info$epoch),
                    as.integer(info$epochs),
                    if (info$batch > 0) sprintf(" and %s of the next", .count_of(info$batch, "minibatch", "minibatches"))
                    else ""))
  }
  options <- c(call$options, list(checkpoint = state, resume = state))
  .train_model(pointer, x, call$assay, input, prepared$codes, options, call$processes %||% 1L, call$hosts,
               verbose, checkpoint)
}
