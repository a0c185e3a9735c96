# fit_expression_model(processes =): worker R processes training data-parallel
# on c10d Gloo (the core's tests check the arithmetic: 2 ranks of batch b are
# 1 process of batch 2b, ranks end on identical weights, a crashed rank fails
# the others).

test_that("two worker processes train a model from memory and from a file", {
  skip_if_not(exprflow:::.cpp_data_parallel_available(), "built without Gloo (libgloo-dev)")
  x <- example_pbmc()[, seq_len(300)]
  model <- fit_expression_model(x, "state_mlp", condition = "cell_type", epochs = 2, batch_size = 32,
                                hidden = 32, n_layers = 1, seed = 3, verbose = FALSE, processes = 2)
  expect_s3_class(model, "exprflow_model")
  expect_equal(nrow(model$history), 2L)
  expect_true(all(is.finite(model$history$validation_loss)))
  generated <- generate_cells(model, n = 20, seed = 1, steps = 5)
  expect_equal(ncol(generated), 20L)

  path <- tempfile(fileext = ".h5ad")
  on.exit(unlink(path))
  write_h5ad(x, path)
  from_file <- fit_expression_model(path, "latent_mlp", condition = "cell_type", epochs = 1, batch_size = 32,
                                    latent_dim = 4, vae_hidden = 16, hidden = 16, n_layers = 1,
                                    training = list(vae_epochs = 1), verbose = FALSE, processes = 2)
  expect_identical(from_file$history$stage, c("vae", "latent"))
})

test_that("processes arguments and worker failures are reported", {
  x <- example_pbmc()[, seq_len(100)]
  expect_error(fit_expression_model(x, "state_mlp", processes = 0), "processes")
  expect_error(fit_expression_model(x, "state_mlp", training = list(group_size = 2)), "`processes` argument")
  job <- tempfile(fileext = ".rds")
  saveRDS(list(a = 1), job)
  on.exit(unlink(job))
  expect_error(train_worker(job, rank = 0), "is not an exprflow training job")
  withr::with_envvar(c(RANK = NA, SLURM_PROCID = NA, OMPI_COMM_WORLD_RANK = NA, PMI_RANK = NA),
                     expect_error(exprflow:::.rank_from_environment(), "none of RANK"))
  withr::with_envvar(c(RANK = NA, SLURM_PROCID = "3"), expect_identical(exprflow:::.rank_from_environment(), 3L))
  # A worker that failed: its exit status and the end of its log.
  folder <- tempfile("job-")
  dir.create(folder)
  on.exit(unlink(folder, recursive = TRUE), add = TRUE)
  writeLines("0", file.path(folder, "rank0.status"))
  writeLines("1", file.path(folder, "rank1.status"))
  writeLines(c("Error: data-parallel training: rank 1 of 2 lost the group"), file.path(folder, "rank1.log"))
  expect_error(exprflow:::.wait_for_workers(folder, 2L), "worker process 1 of 2 failed:\n.*lost the group")
  # The root cause is reported before the others' "lost the group".
  writeLines("1", file.path(folder, "rank0.status"))
  writeLines("Error: cannot open file 'cells.h5ad'", file.path(folder, "rank0.log"))
  expect_error(exprflow:::.wait_for_workers(folder, 2L), "worker process 0 of 2 failed:\ncannot open|worker process 0 of 2 failed:\nError: cannot open")
})

test_that("workers on hosts and workers a cluster's launcher starts train the same model as processes", {
  skip_if_not(exprflow:::.cpp_data_parallel_available(), "built without Gloo (libgloo-dev)")
  x <- example_pbmc()[, seq_len(200)]
  fit <- function(...) {
    fit_expression_model(x, "state_mlp", condition = "cell_type", epochs = 2, batch_size = 32, hidden = 16,
                         n_layers = 1, seed = 5, verbose = FALSE, ...)
  }
  in_processes <- fit(processes = 2)
  # A PSOCK cluster on this machine, meeting through rank 0's TCPStore: the
  # rendezvous changes nothing in the arithmetic.
  on_hosts <- fit(hosts = rep("localhost", 2))
  expect_equal(on_hosts$history$validation_loss, in_processes$history$validation_loss, tolerance = 1e-6)

  # A job file, and two workers started as torchrun starts them.
  folder <- tempfile("job-")
  dir.create(folder)
  on.exit(unlink(folder, recursive = TRUE))
  job <- file.path(folder, "job.rds")
  expect_identical(fit(processes = 2, job = job), normalizePath(job))
  expect_true(file.exists(file.path(folder, "job-cells.h5ad")))
  withr::with_envvar(c(RANK = "0", WORLD_SIZE = "3"), expect_error(train_worker(job), "the launcher started 3 processes"))
  port <- exprflow:::.free_port()
  status <- file.path(folder, sprintf("rank%d.status", 0:1))
  for (rank in 0:1) {
    command <- sprintf("RANK=%d WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=%d %s -e %s %s > %s 2>&1; echo $? > %s",
                       rank, port, shQuote(file.path(R.home("bin"), "Rscript")),
                       shQuote("exprflow::train_worker(commandArgs(TRUE)[1])"), shQuote(job),
                       shQuote(file.path(folder, sprintf("rank%d.log", rank))), shQuote(status[rank + 1]))
    withr::with_envvar(c(R_LIBS = paste(.libPaths(), collapse = .Platform$path.sep), R_TESTS = "", TMPDIR = folder),
                       system2("sh", c("-c", shQuote(command)), wait = FALSE, stdout = FALSE, stderr = FALSE))
  }
  deadline <- Sys.time() + 180
  while (!all(file.exists(status)) && Sys.time() < deadline) Sys.sleep(0.05)
  expect_identical(vapply(status, readLines, character(1), USE.NAMES = FALSE), c("0", "0"),
                   info = paste(readLines(file.path(folder, "rank0.log")), collapse = "\n"))
  launched <- load_model(file.path(folder, "job.exprflow"))
  expect_equal(launched$history$validation_loss, in_processes$history$validation_loss, tolerance = 1e-6)

  # torchrun itself, with its two rendezvous: "static" (its agent serves the
  # store; rank 0 connects to it) and "c10d" (rank 0 serves the store).
  python <- "/usr/bin/python3"
  skip_if_not(file.exists(python) && system2(python, c("-c", shQuote("import torch.distributed.run")),
                                             stdout = FALSE, stderr = FALSE) == 0, "no torchrun (python3-torch)")
  for (rendezvous in list(character(), c("--rdzv_backend", "c10d", "--rdzv_endpoint",
                                         sprintf("127.0.0.1:%d", exprflow:::.free_port()), "--rdzv_id", "test"))) {
    unlink(file.path(folder, "job.exprflow"))
    log <- file.path(folder, "torchrun.log")
    code <- withr::with_envvar(
      c(R_LIBS = paste(.libPaths(), collapse = .Platform$path.sep), R_TESTS = "", TMPDIR = folder),
      system2(python, c(test_path("fixtures", "torchrun.py"), "--nnodes", "1", "--nproc_per_node", "2", rendezvous,
                        "--no_python", shQuote(file.path(R.home("bin"), "Rscript")), "-e",
                        shQuote("exprflow::train_worker(commandArgs(TRUE)[1])"), shQuote(job)),
              stdout = log, stderr = log, timeout = 300))
    expect_identical(code, 0L, info = paste(utils::tail(readLines(log), 20), collapse = "\n"))
    from_torchrun <- load_model(file.path(folder, "job.exprflow"))
    expect_equal(from_torchrun$history$validation_loss, in_processes$history$validation_loss, tolerance = 1e-6)
  }
})

test_that("hosts and job arguments are checked", {
  x <- example_pbmc()[, seq_len(100)]
  expect_error(fit_expression_model(x, "state_mlp", hosts = character()), "`hosts` must be machine names")
  expect_error(fit_expression_model(x, "state_mlp", hosts = c("a", "b"), processes = 3), "`processes` \\(3\\) and `hosts`")
  expect_error(fit_expression_model(x, "state_mlp", hosts = "a", job = tempfile()), "give `processes`, not `hosts`")
  expect_error(fit_expression_model(x, "state_mlp", job = file.path(tempdir(), "no", "job.rds")),
               "`job`: folder '.*' does not exist")
  skip_if_not(exprflow:::.cpp_data_parallel_available(), "built without Gloo (libgloo-dev)")
  expect_error(fit_expression_model(x, "state_mlp", epochs = 1, hosts = c("localhost", "node-that-is-not-here")),
               "`x`: training on other machines .* pass the path of an .h5ad")
  expect_identical(exprflow:::.is_local_host(c("localhost", "127.0.0.1", "elsewhere")), c(TRUE, TRUE, FALSE))
})

test_that("workers take their rendezvous and their threads from the launcher", {
  none <- c(RANK = NA, WORLD_SIZE = NA, LOCAL_WORLD_SIZE = NA, SLURM_PROCID = NA, SLURM_NTASKS = NA,
            SLURM_CPUS_PER_TASK = NA, OMPI_COMM_WORLD_RANK = NA, PMI_RANK = NA, OPENBLAS_NUM_THREADS = NA,
            MASTER_ADDR = NA, MASTER_PORT = NA, TORCHELASTIC_USE_AGENT_STORE = NA)
  cores <- exprflow:::.available_cores()
  threads <- function(spec = list(), ...) {
    withr::with_envvar(c(none, ...), exprflow:::.worker_blas_threads(spec, 0L))
  }
  expect_identical(threads(list(per_host = c(2L, 2L))), max(1L, cores %/% 2L))
  expect_identical(threads(list(per_host = 2L), OPENBLAS_NUM_THREADS = "3"), NA_integer_)  # the user's setting
  expect_identical(threads(), NA_integer_)                                                # no launcher
  expect_identical(threads(SLURM_PROCID = "1"), 1L)
  expect_identical(threads(SLURM_PROCID = "1", SLURM_CPUS_PER_TASK = "4"), 4L)
  expect_identical(threads(RANK = "0", LOCAL_WORLD_SIZE = "2"), max(1L, cores %/% 2L))
  # Under torchrun inside srun the rank and size are torchrun's.
  withr::with_envvar(c(none, RANK = "5", WORLD_SIZE = "8", SLURM_PROCID = "1", SLURM_NTASKS = "2"), {
    expect_identical(exprflow:::.rank_from_environment(), 5L)
    expect_silent(exprflow:::.check_launcher_size(8L))
  })
  store <- function(...) withr::with_envvar(c(none, ...), exprflow:::.launcher_store(list(file_store = "file:/j.store")))
  expect_identical(store(), "file:/j.store")
  expect_identical(store(MASTER_ADDR = "node1", MASTER_PORT = "29500"), "tcp:node1:29500")
  expect_identical(store(MASTER_ADDR = "node1", MASTER_PORT = "29500", TORCHELASTIC_USE_AGENT_STORE = "True"),
                   "tcp-client:node1:29500")
})
