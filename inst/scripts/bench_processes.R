# Training across processes on this machine: one epoch's seconds with
# processes = 1 against processes = 2 (fit_expression_model(processes =)),
# the same global minibatch (1 x 128 cells, 2 x 64), package defaults
# otherwise, on the example PBMC cells, streamed from the same .h5ad by
# both (workers always stream a file), and from memory by one process.
# Medians over the epochs after the first; wall time includes starting
# the worker R processes.
#
#   Rscript inst/scripts/bench_processes.R [epochs]
suppressMessages(library(exprflow))
args <- commandArgs(trailingOnly = TRUE)
epochs <- if (length(args)) as.integer(args[1]) else 5L
x <- example_pbmc()
path <- tempfile(fileext = ".h5ad")
write_h5ad(x, path)
cat(sprintf("%d cells x %d genes, %d epochs, %s\n", ncol(x), nrow(x), epochs,
            exprflow_info()$blas))
rows <- list()
for (architecture in c("state_mlp", "latent_mlp")) {
  for (run in list(list(1L, x, "memory"), list(1L, path, "file"), list(2L, path, "file"))) {
    processes <- run[[1]]
    batch <- 128L %/% processes
    wall <- system.time(model <- fit_expression_model(
      run[[2]], architecture, condition = "cell_type", epochs = epochs, batch_size = batch, verbose = FALSE,
      processes = processes, training = if (architecture == "latent_mlp")
        list(vae_epochs = epochs, vae_batch_size = batch) else list()))[["elapsed"]]
    h <- model$history
    for (stage in unique(h$stage)) {
      seconds <- h$seconds[h$stage == stage]
      rows[[length(rows) + 1L]] <- data.frame(
        architecture = architecture, stage = stage, processes = processes, data = run[[3]],
        epoch_seconds = stats::median(seconds[-1]), wall_seconds = wall,
        last_validation_loss = utils::tail(h$validation_loss[h$stage == stage], 1))
    }
  }
}
table <- do.call(rbind, rows)
table$speedup <- NA_real_
for (i in which(table$processes == 2L)) {
  one <- table$processes == 1L & table$data == "file" & table$architecture == table$architecture[i] & table$stage == table$stage[i]
  table$speedup[i] <- table$epoch_seconds[one] / table$epoch_seconds[i]
}
print(table, digits = 3, row.names = FALSE)
