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
  # The shell records its pid and becomes Rscript (exec), so that pid is the
  # run's. Its temporary files go to a folder removed here (a killed R leaves
  # its own); R CMD check's R_TESTS (a relative path) is not for it.
  scratch <- tempfile("scratch-")
  dir.create(scratch)
  on.exit(unlink(scratch, recursive = TRUE), add = TRUE)
  command <- sprintf("echo $$ > %s; exec %s %s", shQuote(pid_file), shQuote(file.path(R.home("bin"), "Rscript")),
                     shQuote(script))
  withr::with_envvar(c(R_LIBS = paste(.libPaths(), collapse = .Platform$path.sep), R_TESTS = "", TMPDIR = scratch),
                     system2("sh", c("-c", shQuote(command)), wait = FALSE, stdout = FALSE, stderr = FALSE))
  state <- file.path(folder, "checkpoint.exprflow")
  deadline <- Sys.time() + 120
  while (!file.exists(state) && Sys.time() < deadline) Sys.sleep(0.02)
  expect_true(file.exists(state))
  tools::pskill(as.integer(readLines(pid_file)))
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
