# Training across processes: fit_expression_model(processes =) starts that
# many R worker processes on this machine (train_worker()), which meet
# through a c10d FileStore; fit_expression_model(hosts =) starts one worker
# per host name through parallel's PSOCK cluster (ssh for other machines),
# which meet through a c10d TCPStore served by rank 0. Either way the ranks
# train data-parallel in the core (src/core/train/data_parallel.hpp). This
# session orchestrates and is not a rank: it makes the job (the untrained
# model's bytes, the cells' covariate codes, the training options and the
# data's file), waits, and reads rank 0's model.

.job_format <- "exprflow-training-job"
# The core's training options of a process group, which train_worker() sets.
.group_settings <- c("group_store", "group_rank", "group_size", "group_timeout")

# Trains the model in `pointer` on `processes` workers; returns the trained
# model's pointer. `input` is the prepared data of fit_expression_model().
.train_in_processes <- function(pointer, x, assay, input, codes, options, processes, verbose) {
  .require_gloo("processes")
  folder <- tempfile("exprflow-job-")
  dir.create(folder)
  on.exit({
    .stop_workers(folder, processes)
    unlink(folder, recursive = TRUE)
  })
  job <- .new_job(pointer, x, assay, input, codes, options, file.path(folder, "cells.h5ad"), processes,
                  per_host = rep(as.integer(processes), processes),
                  store = paste0("file:", file.path(folder, "store")), result = file.path(folder, "model.exprflow"))
  job_file <- file.path(folder, "job.rds")
  saveRDS(job, job_file)
  if (isTRUE(verbose)) message(sprintf("Training on %d processes", processes))
  .start_workers(job_file, folder, processes)
  .wait_for_workers(folder, processes)
  raw <- readBin(job$result, "raw", file.size(job$result))
  .cpp_model_from_raw(raw, job$result, FALSE)
}

.require_gloo <- function(arg) {
  if (!.cpp_data_parallel_available()) {
    stop(sprintf(paste0("`%s`: this exprflow was built without Gloo, so it cannot train across processes; ",
                        "install the Gloo headers (Debian: apt-get install libgloo-dev) and reinstall exprflow"),
                 arg), call. = FALSE)
  }
}

# The job every rank reads. `per_host`: for each rank, the number of ranks
# on its machine (each takes that share of the machine's cores).
.new_job <- function(pointer, x, assay, input, codes, options, cells_file, size, per_host, store, result) {
  list(format = .job_format, version = 2L, model = .cpp_model_to_raw(pointer),
       data = .job_data(x, assay, input, cells_file), assay = if (.is_file_input(x)) assay,
       codes = codes, options = options, size = as.integer(size), per_host = per_host,
       store = store, result = result)
}

# Trains the model in `pointer` with one worker per entry of `hosts`
# (parallel::makePSOCKcluster(): "localhost" runs here, other names over
# ssh); returns the trained model's pointer. The job travels over the
# cluster's sockets, so only the data's file must be seen by every machine
# (at the same path); rank 0 serves the c10d TCPStore on the first host.
.train_on_hosts <- function(pointer, x, assay, input, codes, options, hosts, verbose) {
  .require_gloo("hosts")
  # parallel reaches every name but "localhost" over ssh: this machine's
  # other names are started as "localhost" (and counted as one machine).
  hosts <- ifelse(.is_local_host(hosts), "localhost", hosts)
  local <- hosts == "localhost"
  if (!all(local) && !.is_file_input(x)) {
    stop(paste0("`x`: training on other machines (`hosts`) streams the cells from a file that every machine ",
                "reads at the same path; pass the path of an .h5ad / 10x .h5 file (write_h5ad() writes one)"),
         call. = FALSE)
  }
  folder <- tempfile("exprflow-job-")
  dir.create(folder)
  on.exit(unlink(folder, recursive = TRUE))
  if (isTRUE(verbose)) message(sprintf("Training on %d processes (%s)", length(hosts), paste(unique(hosts), collapse = ", ")))
  # Workers started here inherit this environment: one LibTorch thread, no
  # R CMD check start-up file, temporary files in the job's folder.
  restore <- .set_environment(c(OMP_NUM_THREADS = "1", R_TESTS = "", TMPDIR = folder))
  cluster <- tryCatch(parallel::makePSOCKcluster(hosts, rscript = file.path(R.home("bin"), "Rscript")),
                      finally = restore())
  pids <- NULL
  finished <- FALSE
  # Workers still training (an error here, or the user interrupted) are
  # stopped: stopCluster() only asks idle workers to end.
  on.exit({
    if (!finished) .stop_host_workers(hosts, pids)
    try(parallel::stopCluster(cluster), silent = TRUE)
  }, add = TRUE, after = FALSE)
  # By name: the workers' own .libPaths(), not a copy of this session's.
  parallel::clusterCall(cluster, ".libPaths", .libPaths())
  pids <- unlist(parallel::clusterCall(cluster, Sys.getpid))
  # Rank 0 serves the store on a port free on its machine, which the
  # others reach by its name (loopback when all run here).
  master <- if (all(local)) "127.0.0.1" else if (local[1]) Sys.info()[["nodename"]] else hosts[1]
  port <- parallel::clusterCall(cluster[1], .free_port)[[1]]
  job <- .new_job(pointer, x, assay, input, codes, options, file.path(folder, "cells.h5ad"), length(hosts),
                  per_host = as.integer(table(hosts)[hosts]), store = sprintf("tcp:%s:%d", master, port),
                  result = NULL)
  outcomes <- tryCatch(parallel::clusterApply(cluster, seq_along(hosts) - 1L, .host_worker, job = job),
                       error = function(e) {
                         stop(sprintf("a worker process ended without a result (%s); see its host's system log",
                                      conditionMessage(e)), call. = FALSE)
                       })
  finished <- TRUE
  failed <- which(!vapply(outcomes, function(o) isTRUE(o$ok), logical(1)))
  if (length(failed)) {
    messages <- vapply(outcomes[failed], function(o) o$message, character(1))
    pick <- .root_cause(as.list(messages))
    stop(sprintf("worker process %d of %d (on %s) failed: %s", failed[pick] - 1L, length(hosts),
                 hosts[failed[pick]], messages[pick]), call. = FALSE)
  }
  .cpp_model_from_raw(outcomes[[1]]$model, "the worker of rank 0", FALSE)
}

# What each PSOCK worker runs: a package function, so that it travels as a
# reference to the namespace and not with a caller's frame (the data).
.host_worker <- function(rank, job) {
  tryCatch(list(ok = TRUE, model = train_worker(job, rank)),
           error = function(e) list(ok = FALSE, message = conditionMessage(e)))
}

.stop_host_workers <- function(hosts, pids) {
  if (length(pids) != length(hosts)) return(invisible())
  for (k in seq_along(hosts)) {
    if (hosts[k] == "localhost") {
      tools::pskill(pids[k])
    } else {
      try(system2("ssh", c(hosts[k], "kill", pids[k]), stdout = FALSE, stderr = FALSE, wait = FALSE), silent = TRUE)
    }
  }
}

# Whether each host name means this machine.
.is_local_host <- function(hosts) {
  hosts %in% c("localhost", "127.0.0.1", Sys.info()[["nodename"]])
}

# Sets environment variables; returns a function that restores them.
.set_environment <- function(values) {
  old <- Sys.getenv(names(values), unset = NA, names = TRUE)
  do.call(Sys.setenv, as.list(values))
  function() {
    unset <- is.na(old)
    if (any(unset)) Sys.unsetenv(names(old)[unset])
    if (any(!unset)) do.call(Sys.setenv, as.list(old[!unset]))
  }
}

# A TCP port nobody listens on now, for rank 0's store: below Linux's
# ephemeral range (32768 up), which outgoing connections take. Chosen from
# the process id and the clock, not R's random numbers (the user's seed
# stays).
.free_port <- function() {
  base <- Sys.getpid() * 7919 + as.integer(Sys.time())
  for (attempt in 0:49) {
    port <- 20000L + as.integer((base + attempt * 104729) %% 12768)
    socket <- tryCatch(serverSocket(port), error = function(e) NULL, warning = function(w) NULL)
    if (!is.null(socket)) {
      close(socket)
      return(port)
    }
  }
  stop("`hosts`: found no free TCP port for the workers to meet on", call. = FALSE)  # nocov
}

# Where workers stream the cells from: the file itself; the HDF5 file
# behind an HDF5Array (list(path, name, genes)); or the counts of data held
# in memory, written to `cells_file`.
.job_data <- function(x, assay, input, cells_file) {
  if (.is_file_input(x)) return(normalizePath(x))
  counts <- .counts_and_covariates(x, if (methods::is(x, "SummarizedExperiment")) assay %||% "counts" else assay)$counts
  if (!identical(rownames(counts), input$genes)) {
    stop("`x`: its genes could not be written for the worker processes", call. = FALSE)  # nocov
  }
  backed <- .hdf5_backed_counts(counts)
  if (!is.null(backed)) return(list(path = normalizePath(backed$path), name = backed$name, genes = input$genes))
  # Counts only: the workers get the cells' covariate codes from the job.
  .write_counts_h5ad(counts, cells_file)
  cells_file
}

# fit_expression_model(job =): the job for workers that a cluster's
# launcher starts (train_worker() reads the rank, the rendezvous and the
# machine's share of workers from the launcher's environment). Next to the
# job: the cells of data held in memory (<job>-cells.h5ad) and, once
# trained, the model (<job>.exprflow, rank 0 writes it).
.write_training_job <- function(job, pointer, x, assay, input, codes, options, processes) {
  .check_string(job, "job")
  if (processes > 1L) .require_gloo("job")
  job <- normalizePath(path.expand(job), mustWork = FALSE)
  if (!dir.exists(dirname(job))) stop(sprintf("`job`: folder '%s' does not exist", dirname(job)), call. = FALSE)
  stem <- sub("\\.rds$", "", job)
  store <- paste0(stem, ".store")
  # A file store left by an earlier run would mix its keys with this run's,
  # and its model would be taken for this run's.
  unlink(c(store, paste0(stem, ".exprflow")))
  spec <- .new_job(pointer, x, assay, input, codes, options, paste0(stem, "-cells.h5ad"), processes,
                   per_host = NULL, store = NULL, result = paste0(stem, ".exprflow"))
  spec$file_store <- paste0("file:", store)
  saveRDS(spec, job)
  invisible(job)
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

# Which of the failed workers' messages (a list of character vectors) to
# report: the first whose error is its own, not the others' "lost the
# group" that follows it.
.root_cause <- function(messages) {
  own <- which(!vapply(messages, function(m) any(grepl("lost the group", m, fixed = TRUE)), logical(1)))
  if (length(own)) own[1] else 1L
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
      pick <- .root_cause(logs)
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
#' Each worker gives LibTorch one thread and OpenBLAS its share of the
#' cores it may use: the cores divided by the job's workers on its machine
#' (as the job or the launcher says: `LOCAL_WORLD_SIZE`,
#' `OMPI_COMM_WORLD_LOCAL_SIZE`; under srun, `SLURM_CPUS_PER_TASK`, 1 when
#' unset). A launcher that sets `OPENBLAS_NUM_THREADS` keeps its setting.
#'
#' @section On a cluster:
#' Write the job in R, start the workers with the cluster's launcher, and
#' read the model when they are done:
#' \preformatted{
#' fit_expression_model("/shared/pbmc.h5ad", "latent_mlp", condition = "cell_type",
#'                      epochs = 100, processes = 8, job = "/shared/run/job.rds")
#'
#' # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (run on
#' # each of the 2 machines; node1 is the first):
#' torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
#'   --rdzv-endpoint node1:29400 --rdzv-id run1 --no-python \\
#'   Rscript -e 'exprflow::train_worker("/shared/run/job.rds")'
#' # srun sets SLURM_PROCID; name the rendezvous yourself:
#' export MASTER_ADDR=$(scontrol show hostnames | head -n 1) MASTER_PORT=29500
#' srun -n 8 Rscript -e 'exprflow::train_worker("/shared/run/job.rds")'
#'
#' model <- load_model("/shared/run/job.exprflow")
#' }
#' A job written with `checkpoint =` continues from its checkpoint when its
#' workers are started again (a restarted launcher, a requeued batch job),
#' on as many processes (a finished job started again trains nothing more:
#' write the job again to train anew). Workers that meet through the file next to the job
#' (no `MASTER_ADDR`) leave it behind when killed: delete `<job>.store`
#' before starting them again.
#'
#' Rank 0 serves the c10d store at `MASTER_ADDR:MASTER_PORT`, or connects
#' to it when torchrun's agent serves it (`TORCHELASTIC_USE_AGENT_STORE`).
#' Without `MASTER_ADDR` and `MASTER_PORT` the workers meet through a file
#' next to the job, which only works for workers on one machine. The
#' launcher's number of processes (`WORLD_SIZE`, `SLURM_NTASKS`, ...) must
#' be the job's `processes`.
#'
#' @param job The job: a file (an `.rds` written by
#'   `fit_expression_model(processes = )`), or the job itself (a list, as
#'   `fit_expression_model(hosts = )` sends it to each worker).
#' @param rank This process's rank, 0 to the job's size minus 1; `NULL`
#'   reads it from the environment as launchers set it: `RANK` (torchrun),
#'   `SLURM_PROCID` (srun), `OMPI_COMM_WORLD_RANK` or `PMI_RANK` (mpirun).
#' @return For rank 0 of a job without a result file, the trained model's
#'   bytes; otherwise `NULL` (rank 0 writes the model to the job's result
#'   file). Invisibly.
#' @export
train_worker <- function(job, rank = NULL) {
  spec <- .read_job(job)
  launched <- is.null(spec$per_host)  # written for a cluster's launcher (fit_expression_model(job =))
  if (is.null(rank)) {
    rank <- .rank_from_environment()
    if (launched) .check_launcher_size(spec$size)
  }
  .check_count(rank, "rank", min = 0)
  if (rank >= spec$size) stop(sprintf("`rank` must be below the job's %d processes", spec$size), call. = FALSE)
  if (is.character(job) && !launched) {  # for .stop_workers() of fit_expression_model(processes =)
    pid_file <- file.path(dirname(job), sprintf("rank%d.pid", rank))
    writeLines(as.character(Sys.getpid()), pid_file)
    on.exit(unlink(pid_file))
  }
  .cpp_set_threads(1L)
  threads <- .worker_blas_threads(spec, rank)
  if (!is.na(threads)) .cpp_set_blas_threads(threads)
  # A job its launcher starts again (restarted or requeued workers)
  # continues from the checkpoint the earlier launch wrote (the job's writer
  # removed any older one). No rank writes before every rank has joined, and
  # the trainer checks that every rank starts at the same step (a rank on a
  # shared file system could see an older file, or none).
  state <- spec$options$checkpoint
  resuming <- launched && !is.null(state) && is.null(spec$options$resume) && file.exists(state)
  pointer <- if (resuming) .cpp_model_from_checkpoint(state) else .cpp_model_from_raw(spec$model, "the training job", FALSE)
  source <- if (is.list(spec$data)) {
    .cpp_source_from_hdf5_matrix(spec$data$path, spec$data$name, spec$data$genes, character(), tempdir())$source
  } else {
    .expression_input(spec$data, spec$assay, NULL)$source
  }
  options <- c(spec$options, if (resuming) list(resume = state),
               list(group_store = spec$store %||% .launcher_store(spec), group_rank = rank, group_size = spec$size))
  .cpp_model_train(pointer, source, spec$codes, options, function(...) TRUE)
  if (rank != 0L) return(invisible(NULL))
  raw <- .cpp_model_to_raw(pointer)
  if (is.null(spec$result)) return(invisible(raw))
  .cpp_write_model_raw(raw, spec$result)
  invisible(NULL)
}

.read_job <- function(job) {
  if (is.list(job)) {
    spec <- job
    what <- "`job`: the list"
  } else {
    .check_string(job, "job")
    spec <- tryCatch(readRDS(job), error = function(e) {
      stop(sprintf("`job`: cannot read '%s' (%s)", job, conditionMessage(e)), call. = FALSE)
    })
    what <- sprintf("`job`: '%s'", job)
  }
  if (!is.list(spec) || !identical(spec$format, .job_format)) {
    stop(sprintf("%s is not an exprflow training job", what), call. = FALSE)
  }
  spec
}


# The rendezvous of a job written for a cluster's launcher: the TCPStore at
# MASTER_ADDR:MASTER_PORT (torchrun sets them; set them under srun or
# mpirun), served by rank 0, or by torchrun's agent when it says so; else
# the file store next to the job (workers on one machine).
.launcher_store <- function(spec) {
  address <- Sys.getenv("MASTER_ADDR")
  port <- Sys.getenv("MASTER_PORT")
  if (nzchar(address) && nzchar(port)) {
    served <- identical(Sys.getenv("TORCHELASTIC_USE_AGENT_STORE"), "True")
    return(sprintf("%s:%s:%s", if (served) "tcp-client" else "tcp", address, port))
  }
  spec$file_store %||% stop("`job`: it names no rendezvous; set MASTER_ADDR and MASTER_PORT", call. = FALSE)
}

# The environment variables of each launcher: this process's rank, the
# number of processes, and how many of them share this machine.
.launchers <- list(
  torchrun = c(rank = "RANK", size = "WORLD_SIZE", local = "LOCAL_WORLD_SIZE"),
  srun = c(rank = "SLURM_PROCID", size = "SLURM_NTASKS", local = NA),
  openmpi = c(rank = "OMPI_COMM_WORLD_RANK", size = "OMPI_COMM_WORLD_SIZE", local = "OMPI_COMM_WORLD_LOCAL_SIZE"),
  mpich = c(rank = "PMI_RANK", size = "PMI_SIZE", local = "MPI_LOCALNRANKS"))

# The launcher that started this process (the first whose rank is set), or NULL.
.launcher <- function() {
  for (variables in .launchers) {
    if (nzchar(Sys.getenv(variables[["rank"]]))) return(variables)
  }
  NULL
}

.environment_integer <- function(name) {
  if (is.na(name)) return(NA_integer_)
  suppressWarnings(as.integer(Sys.getenv(name)))
}

# The job's size against the size of the launcher that gave the rank.
.check_launcher_size <- function(size) {
  variables <- .launcher()
  value <- .environment_integer(variables[["size"]])
  if (!is.na(value) && value != size) {
    stop(sprintf("the launcher started %d processes (%s) but the job was written for %d (`processes`)",
                 value, variables[["size"]], size), call. = FALSE)
  }
}

# OpenBLAS threads for this worker: its share of the cores it may use; NA
# (left as it is) when OPENBLAS_NUM_THREADS is set or the share is unknown.
# srun gives each task SLURM_CPUS_PER_TASK cores (1 unless asked).
.worker_blas_threads <- function(spec, rank) {
  if (nzchar(Sys.getenv("OPENBLAS_NUM_THREADS"))) return(NA_integer_)
  if (!is.null(spec$per_host)) return(max(1L, .available_cores() %/% spec$per_host[rank + 1L]))
  variables <- .launcher()
  if (is.null(variables)) return(NA_integer_)
  if (identical(variables[["rank"]], "SLURM_PROCID")) {
    cpus <- .environment_integer("SLURM_CPUS_PER_TASK")
    return(if (is.na(cpus)) 1L else max(1L, cpus))
  }
  local <- .environment_integer(variables[["local"]])
  if (is.na(local) || local < 1L) NA_integer_ else max(1L, .available_cores() %/% local)
}

# The cores this process may run on (its CPU affinity, as nproc reports
# it; a container or a batch job gives fewer than the machine has).
.available_cores <- function() {
  cores <- suppressWarnings(tryCatch(as.integer(system2("nproc", stdout = TRUE, stderr = FALSE)[1]),
                                     error = function(e) NA_integer_))
  if (length(cores) != 1L || is.na(cores)) cores <- parallel::detectCores(logical = TRUE)
  if (is.na(cores)) 1L else as.integer(cores)
}

.rank_from_environment <- function() {
  variables <- .launcher()
  if (is.null(variables)) {
    stop("`rank`: not given, and none of RANK, SLURM_PROCID, OMPI_COMM_WORLD_RANK, PMI_RANK is set", call. = FALSE)
  }
  .environment_integer(variables[["rank"]])
}
