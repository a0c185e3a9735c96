# Training across processes on this machine: fit_expression_model(processes =)
# starts that many R worker processes (train_worker()), which meet through a
# c10d FileStore and train data-parallel in the core (src/core/train/
# data_parallel.hpp). This session orchestrates and is not a rank: it writes
# the job (the untrained model's bytes, the cells' covariate codes, the
# training options and the data's file), waits, and reads rank 0's model.

.job_format <- "exprflow-training-job"
# The core's training options of a process group, which train_worker() sets.
.group_settings <- c("group_store", "group_rank", "group_size", "group_timeout")

# Trains the model in `pointer` on `processes` workers; returns the trained
# model's pointer. `input` is the prepared data of fit_expression_model().
.train_in_processes <- function(pointer, x, assay, input, codes, options, processes, verbose) {
  if (!.cpp_data_parallel_available()) {
    stop("`processes`: this exprflow was built without Gloo, so it cannot train across processes; install ",
         "the Gloo headers (Debian: apt-get install libgloo-dev) and reinstall exprflow", call. = FALSE)
  }
  folder <- tempfile("exprflow-job-")
  dir.create(folder)
  on.exit({
    .stop_workers(folder, processes)
    unlink(folder, recursive = TRUE)
  })
  job <- list(format = .job_format, version = 1L, model = .cpp_model_to_raw(pointer),
              data = .job_data(x, assay, input, folder), assay = if (.is_file_input(x)) assay,
              codes = codes, options = options, size = as.integer(processes),
              store = paste0("file:", file.path(folder, "store")), result = file.path(folder, "model.exprflow"))
  job_file <- file.path(folder, "job.rds")
  saveRDS(job, job_file)
  if (isTRUE(verbose)) message(sprintf("Training on %d processes", processes))
  .start_workers(job_file, folder, processes)
  .wait_for_workers(folder, processes)
  raw <- readBin(job$result, "raw", file.size(job$result))
  .cpp_model_from_raw(raw, job$result, FALSE)
}

# The path workers stream the cells from: the file itself, or the counts of
# data held in memory written to an .h5ad in the job's folder.
.job_data <- function(x, assay, input, folder) {
  if (.is_file_input(x)) return(normalizePath(x))
  counts <- .counts_and_covariates(x, if (methods::is(x, "SummarizedExperiment")) assay %||% "counts" else assay)$counts
  if (!identical(rownames(counts), input$genes)) {
    stop("`x`: its genes could not be written for the worker processes", call. = FALSE)  # nocov
  }
  # Counts only: the workers get the cells' covariate codes from the job.
  path <- file.path(folder, "cells.h5ad")
  .write_counts_h5ad(counts, path)
  path
}

.start_workers <- function(job_file, folder, processes) {
  rscript <- file.path(R.home("bin"), "Rscript")
  libraries <- paste(.libPaths(), collapse = .Platform$path.sep)
  for (rank in seq_len(processes) - 1L) {
    log <- file.path(folder, sprintf("rank%d.log", rank))
    status <- file.path(folder, sprintf("rank%d.status", rank))
    # The shell records its pid and the worker's exit status, however it
    # ends. Each worker: one LibTorch and one OpenBLAS thread (n workers
    # fill n cores without oversubscribing them), its temporary files in the
    # job's folder (removed with it, even for a worker that was stopped),
    # and no R_TESTS (R CMD check's start-up file, a relative path).
    command <- paste0(
      "echo $$ > ", shQuote(file.path(folder, sprintf("rank%d.shell", rank))), "; ",
      "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 R_TESTS= TMPDIR=", shQuote(folder),
      " R_LIBS=", shQuote(libraries), " ", shQuote(rscript),
      " -e 'exprflow::train_worker(commandArgs(TRUE)[1], rank = as.integer(commandArgs(TRUE)[2]))'",
      " ", shQuote(job_file), " ", rank, " > ", shQuote(log), " 2>&1; echo $? > ", shQuote(status))
    system2("sh", c("-c", shQuote(command)), wait = FALSE, stdout = FALSE, stderr = FALSE)
  }
}

# Stops the workers that have not ended (an error, or the user interrupted):
# each worker R process (its pid file) and the shell that waits on it.
.stop_workers <- function(folder, processes) {
  for (rank in seq_len(processes) - 1L) {
    if (file.exists(file.path(folder, sprintf("rank%d.status", rank)))) next
    for (kind in c("pid", "shell")) {
      pid_file <- file.path(folder, sprintf("rank%d.%s", rank, kind))
      if (file.exists(pid_file)) tools::pskill(as.integer(readLines(pid_file, warn = FALSE)))
    }
  }
}

# Waits until every worker has ended; stops with a failed worker's log when
# one fails: the first whose error is its own, not the others' "lost the
# group" (the rest then fail within the group's timeout, or are stopped).
.wait_for_workers <- function(folder, processes) {
  status <- file.path(folder, sprintf("rank%d.status", seq_len(processes) - 1L))
  repeat {
    done <- file.exists(status)
    codes <- rep(NA_integer_, processes)
    codes[done] <- vapply(status[done], function(f) {
      text <- readLines(f, warn = FALSE)
      if (length(text)) as.integer(text[1]) else NA_integer_
    }, integer(1))
    failed <- which(!is.na(codes) & codes != 0L)
    if (length(failed)) {
      logs <- lapply(failed - 1L, function(rank) readLines(file.path(folder, sprintf("rank%d.log", rank)), warn = FALSE))
      own <- which(!vapply(logs, function(l) any(grepl("lost the group", l, fixed = TRUE)), logical(1)))
      pick <- if (length(own)) own[1] else 1L
      stop(sprintf("worker process %d of %d failed:\n%s", failed[pick] - 1L, processes,
                   paste(utils::tail(logs[[pick]], 12L), collapse = "\n")), call. = FALSE)
    }
    if (all(!is.na(codes))) return(invisible())
    Sys.sleep(0.05)
  }
}

#' Run one rank of a data-parallel training job
#'
#' What each worker process of `fit_expression_model(..., processes = n)`
#' runs: it reads the job file the R session wrote (the untrained model, the
#' cells' covariates, the training options, the data's file), joins the
#' other ranks through c10d's Gloo backend, trains its share of every
#' minibatch (gradients are averaged over the ranks at every step, so all
#' ranks hold the same weights), and rank 0 writes the trained model where
#' the job says. It is not meant to be called in an interactive session.
#'
#' @param job The job file (an `.rds` written by `fit_expression_model()`).
#' @param rank This process's rank, 0 to the job's size minus 1; `NULL`
#'   reads it from the environment as launchers set it: `RANK` (torchrun),
#'   `SLURM_PROCID` (srun), `OMPI_COMM_WORLD_RANK` or `PMI_RANK` (mpirun).
#' @return `NULL`, invisibly; the model is in the job's result file.
#' @export
train_worker <- function(job, rank = NULL) {
  .check_string(job, "job")
  spec <- tryCatch(readRDS(job), error = function(e) {
    stop(sprintf("`job`: cannot read '%s' (%s)", job, conditionMessage(e)), call. = FALSE)
  })
  if (!is.list(spec) || !identical(spec$format, .job_format)) {
    stop(sprintf("`job`: '%s' is not an exprflow training job", job), call. = FALSE)
  }
  rank <- rank %||% .rank_from_environment()
  .check_count(rank, "rank", min = 0)
  if (rank >= spec$size) stop(sprintf("`rank` must be below the job's %d processes", spec$size), call. = FALSE)
  pid_file <- file.path(dirname(job), sprintf("rank%d.pid", rank))
  writeLines(as.character(Sys.getpid()), pid_file)
  on.exit(unlink(pid_file))
  pointer <- .cpp_model_from_raw(spec$model, job, FALSE)
  input <- .expression_input(spec$data, spec$assay, NULL)
  options <- c(spec$options, list(group_store = spec$store, group_rank = rank, group_size = spec$size))
  .cpp_model_train(pointer, input$source, spec$codes, options, function(...) TRUE)
  if (rank == 0L) .cpp_write_model_raw(.cpp_model_to_raw(pointer), spec$result)
  invisible(NULL)
}

.rank_from_environment <- function() {
  for (name in c("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")) {
    value <- Sys.getenv(name)
    if (nzchar(value)) return(as.integer(value))
  }
  stop("`rank`: not given, and none of RANK, SLURM_PROCID, OMPI_COMM_WORLD_RANK, PMI_RANK is set", call. = FALSE)
}
