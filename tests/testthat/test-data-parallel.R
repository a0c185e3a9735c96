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
  expect_error(fit_expression_model(x, "state_mlp", processes = 2, checkpoint = tempfile()),
               "checkpoints of training across processes are not supported yet")
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
