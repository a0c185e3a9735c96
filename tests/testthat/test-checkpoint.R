# Checkpoints of fit_expression_model() and resume_training(): a run killed
# in another R process and resumed here ends on the weights of the same run
# left alone.

checkpoint_cells <- function() example_pbmc()[, seq_len(200)]

generated_counts <- function(model, n, seed) {
  as.matrix(SummarizedExperiment::assay(generate_cells(model, n = n, seed = seed, steps = 10), "counts"))
}

checkpoint_fit <- function(x, ...) {
  fit_expression_model(x, "state_mlp", condition = "cell_type", epochs = 300, batch_size = 32,
                       hidden = 32, n_layers = 1, seed = 3, verbose = FALSE, ...)
}

# Starts `command` (a shell command) in the background; its shell records its
# pid in `pid_file` and becomes the command (exec), so that pid is the
# command's. Temporary files go to `scratch` (a killed R leaves its own);
# R CMD check's R_TESTS (a relative path) is not for it.
start_in_background <- function(command, pid_file, scratch, environment = character()) {
  withr::with_envvar(c(R_LIBS = paste(.libPaths(), collapse = .Platform$path.sep), R_TESTS = "", TMPDIR = scratch,
                       environment),
                     system2("sh", c("-c", shQuote(sprintf("echo $$ > %s; exec %s", shQuote(pid_file), command))),
                             wait = FALSE, stdout = FALSE, stderr = FALSE))
}

rscript <- function(...) paste(shQuote(file.path(R.home("bin"), "Rscript")), ...)

# Waits for `path` to appear (within `seconds`); whether it did.
wait_for_file <- function(path, seconds = 120) {
  deadline <- Sys.time() + seconds
  while (!all(file.exists(path)) && Sys.time() < deadline) Sys.sleep(0.02)
  all(file.exists(path))
}

kill_pids_in <- function(pid_files) {
  for (f in pid_files) tools::pskill(as.integer(readLines(f)))
}

test_that("a run killed in another process resumes to the uninterrupted run's weights", {
  folder <- tempfile("run-")
  script <- tempfile(fileext = ".R")
  pid_file <- tempfile()
  on.exit(unlink(c(folder, script, pid_file), recursive = TRUE))
  writeLines(c(
    "suppressMessages(library(exprflow))",
    "x <- example_pbmc()[, seq_len(200)]",
    sprintf(paste0("fit_expression_model(x, 'state_mlp', condition = 'cell_type', epochs = 300, batch_size = 32, ",
                   "hidden = 32, n_layers = 1, seed = 3, verbose = FALSE, checkpoint = '%s')"), folder)),
    script)
  scratch <- tempfile("scratch-")
  dir.create(scratch)
  on.exit(unlink(scratch, recursive = TRUE), add = TRUE)
  start_in_background(rscript(shQuote(script)), pid_file, scratch)
  state <- file.path(folder, "checkpoint.exprflow")
  expect_true(wait_for_file(state))
  kill_pids_in(pid_file)
  Sys.sleep(0.5)
  info <- exprflow:::.cpp_checkpoint_info(state)
  expect_identical(info$stage, "model")
  expect_gte(info$steps, 1)
  expect_lt(info$epoch, 300)  # killed mid-run: there is something left to resume

  x <- checkpoint_cells()
  expect_error(resume_training(folder), "`x`: the run trained on data held in memory")
  expect_error(resume_training(folder, x = x[, 1:150]), "150 cells, the run trained on 2,000 genes x 200 cells")
  # Other cells of the same shape, and the same cells in another order.
  expect_error(resume_training(folder, x = x[, 200:1]), "`x`: its cells are not the run's")
  resumed <- resume_training(folder, x = x)
  whole <- checkpoint_fit(x)
  expect_identical(resumed$history[, c("stage", "epoch", "train_loss", "validation_loss")],
                   whole$history[, c("stage", "epoch", "train_loss", "validation_loss")])
  expect_identical(generated_counts(resumed, 40, 2),
                   generated_counts(whole, 40, 2))
})

test_that("runs across processes, killed, resume on as many processes to the uninterrupted run's weights", {
  skip_if_not(exprflow:::.cpp_data_parallel_available(), "built without Gloo (libgloo-dev)")
  x <- checkpoint_cells()
  settings <- list("state_mlp", condition = "cell_type", epochs = 150, batch_size = 32, hidden = 32, n_layers = 1,
                   seed = 3, patience = 0, verbose = FALSE, processes = 2)
  fit <- function(...) do.call(fit_expression_model, c(list(x), settings, list(...)))
  scratch <- tempfile("scratch-")
  folder <- tempfile("run-")
  dir.create(scratch)
  on.exit(unlink(c(scratch, folder), recursive = TRUE))
  killed_mid_run <- function(state) {
    Sys.sleep(0.5)
    info <- exprflow:::.cpp_checkpoint_info(state)
    info$epoch < 150
  }

  # fit_expression_model(processes = 2) in another R session: it and its
  # workers are killed once rank 0 has written a checkpoint.
  script <- file.path(scratch, "run.R")
  writeLines(c("suppressMessages(library(exprflow))", "x <- example_pbmc()[, seq_len(200)]",
               sprintf("do.call(fit_expression_model, c(list(x), %s, list(checkpoint = '%s')))",
                       paste(deparse(settings), collapse = ""), folder)), script)
  start_in_background(rscript(shQuote(script)), file.path(scratch, "session.pid"), scratch)
  state <- file.path(folder, "checkpoint.exprflow")
  expect_true(wait_for_file(state))
  kill_pids_in(file.path(scratch, "session.pid"))
  kill_pids_in(list.files(scratch, "^rank[0-9]+\\.pid$", recursive = TRUE, full.names = TRUE))
  expect_true(killed_mid_run(state))
  expect_identical(readRDS(file.path(folder, "call.rds"))$processes, 2L)
  resumed <- resume_training(folder, x = x)
  whole <- fit()
  expect_identical(resumed$history[, c("epoch", "train_loss", "validation_loss")],
                   whole$history[, c("epoch", "train_loss", "validation_loss")])
  expect_identical(generated_counts(resumed, 40, 2), generated_counts(whole, 40, 2))

  # A job for a launcher: its workers are killed, then started again, and
  # continue from the checkpoint (torchrun's variables, rank 0 serving the store).
  job <- file.path(scratch, "job.rds")
  job_folder <- file.path(scratch, "job-run")
  fit(job = job, checkpoint = job_folder)
  expect_error(resume_training(job_folder), "start its workers again")
  launch <- function(name) {
    port <- exprflow:::.free_port()
    for (rank in 0:1) {
      start_in_background(rscript("-e", shQuote("exprflow::train_worker(commandArgs(TRUE)[1])"), shQuote(job)),
                          file.path(scratch, sprintf("%s%d.pid", name, rank)), scratch,
                          c(RANK = rank, WORLD_SIZE = 2, LOCAL_WORLD_SIZE = 2, MASTER_ADDR = "127.0.0.1",
                            MASTER_PORT = port))
    }
  }
  launch("first")
  job_state <- file.path(job_folder, "checkpoint.exprflow")
  expect_true(wait_for_file(job_state))
  kill_pids_in(file.path(scratch, sprintf("first%d.pid", 0:1)))
  expect_true(killed_mid_run(job_state))
  # Only a resumed worker can train: the job's own model is made unreadable.
  spec <- readRDS(job)
  spec$model <- as.raw(1:16)
  saveRDS(spec, job)
  launch("again")
  expect_true(wait_for_file(file.path(scratch, "job.exprflow"), seconds = 300))
  Sys.sleep(0.5)  # rank 1 ends after rank 0 has written the model
  relaunched <- load_model(file.path(scratch, "job.exprflow"))
  expect_identical(relaunched$history[, c("epoch", "train_loss", "validation_loss")],
                   whole$history[, c("epoch", "train_loss", "validation_loss")])
  expect_identical(generated_counts(relaunched, 40, 2), generated_counts(whole, 40, 2))
})

test_that("a run on a file resumes from the file's path, and settings come from the run", {
  x <- checkpoint_cells()
  path <- tempfile(fileext = ".h5ad")
  folder <- tempfile("run-")
  on.exit(unlink(c(path, folder), recursive = TRUE))
  write_h5ad(x, path)
  model <- fit_expression_model(path, "latent_mlp", condition = "cell_type", epochs = 2, batch_size = 64,
                                latent_dim = 4, vae_hidden = 16, hidden = 16, n_layers = 1,
                                training = list(vae_epochs = 2), verbose = FALSE,
                                checkpoint = folder, checkpoint_every = 2)
  expect_identical(exprflow:::.cpp_checkpoint_info(file.path(folder, "checkpoint.exprflow"))$stage, "latent")
  # The run had ended: resuming trains nothing more and gives the same model.
  resumed <- resume_training(folder)
  expect_identical(resumed$history$train_loss, model$history$train_loss)
  expect_identical(generated_counts(resumed, 20, 1),
                   generated_counts(model, 20, 1))
})

test_that("checkpoint arguments and folders are checked", {
  x <- checkpoint_cells()
  file <- tempfile()
  folder <- tempfile("empty-")
  writeLines("not a folder", file)
  dir.create(folder)
  on.exit(unlink(c(file, folder), recursive = TRUE))
  expect_error(checkpoint_fit(x, checkpoint = file), "`checkpoint`: .* is a file")
  expect_error(checkpoint_fit(x, checkpoint = folder, checkpoint_every = 0), "checkpoint_every")
  expect_error(checkpoint_fit(x, training = list(resume = folder)), "`training`: checkpoints are set by")
  expect_error(resume_training(file.path(folder, "missing")), "does not exist")
  expect_error(resume_training(folder), "holds no checkpoint")
  expect_false("checkpoint" %in% names(training_defaults("state_mlp")))
})
