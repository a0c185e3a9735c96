# LoRA fine-tuning from R: a trained model adapted to new cells with a
# technical shift, the adapter saved alone and applied to the original, and
# the errors that name what is wrong.

# Cells 1-600 of the example data, and cells 601-1200 with a four-fold rise
# of 20 well-expressed genes (the genes ranked 21-40 by mean count).
fine_tune_cells <- function(shifted) {
  sce <- pbmc_sce()[, if (shifted) 601:1200 else 1:600]
  if (shifted) {
    counts <- SingleCellExperiment::counts(sce)
    genes <- order(Matrix::rowMeans(SingleCellExperiment::counts(pbmc_sce())), decreasing = TRUE)[21:40]
    counts[genes, ] <- counts[genes, ] * 4
    SingleCellExperiment::counts(sce) <- counts
  }
  sce
}

test_that("fine_tune() adapts a model to shifted cells, and its adapter replays it", {
  base <- fit_expression_model(fine_tune_cells(FALSE), "state_mlp", condition = "cell_type", epochs = 20,
                               hidden = 128, n_layers = 1, batch_size = 64, verbose = FALSE, seed = 1)
  shifted <- fine_tune_cells(TRUE)
  tuned <- fine_tune(base, shifted, rank = 4, epochs = 20, learning_rate = 1e-2, batch_size = 64,
                     training = list(ema_decay = 0.99), verbose = FALSE)
  expect_null(base$lora)
  expect_equal(tuned$lora$rank, 4L)
  expect_lt(tuned$lora$trainable, tuned$lora$network / 2)
  expect_true("lora" %in% tuned$history$stage)
  expect_output(print(tuned), "LoRA       : rank 4")
  genes <- rownames(pbmc_sce())[order(Matrix::rowMeans(SingleCellExperiment::counts(pbmc_sce())),
                                      decreasing = TRUE)[21:40]]
  shifted_mean <- function(model) {
    cells <- generate_cells(model, condition = c("Naive CD4 T" = 150), steps = 20, seed = 2)
    mean(as.matrix(SingleCellExperiment::logcounts(cells))[genes, ])
  }
  expect_gt(shifted_mean(tuned) - shifted_mean(base), 0.3)

  path <- tempfile(fileext = ".lora")
  on.exit(unlink(path))
  save_model(tuned, path, adapter_only = TRUE)
  expect_lt(file.size(path), length(tuned$state$raw))
  again <- load_adapter(base, path)
  expect_identical(again$history, tuned$history)  # the fine-tuning's epochs come with the adapter
  expect_true("lora" %in% again$history$stage)
  expect_identical(SingleCellExperiment::counts(generate_cells(again, condition = c(B = 20), steps = 5, seed = 3)),
                   SingleCellExperiment::counts(generate_cells(tuned, condition = c(B = 20), steps = 5, seed = 3)))
  # Only onto the model it was fine-tuned from, as it was.
  expect_error(load_adapter(tuned, path), "adapts another model")
  expect_error(save_model(base, tempfile(), adapter_only = TRUE), "holds no LoRA adapter")
  expect_error(load_adapter(base, tempfile()), "does not exist")
  expect_error(fine_tune(base, shifted, rank = 0), "`rank`")
})

test_that("fine_tune() learns a condition level the model never saw", {
  cells <- pbmc_sce()
  base <- fit_expression_model(cells[, cells$cell_type != "NK"][, 1:500], "state_mlp", condition = "cell_type",
                               epochs = 20, hidden = 128, n_layers = 1, batch_size = 64, verbose = FALSE, seed = 1)
  expect_false("NK" %in% base$levels)
  tuned <- fine_tune(base, cells[, 501:1200], rank = 4, epochs = 20, learning_rate = 1e-2, batch_size = 64,
                     training = list(ema_decay = 0.99), verbose = FALSE)
  expect_identical(tuned$levels, c(base$levels, "NK"))
  expect_false("NK" %in% base$levels)  # the original is unchanged
  nk_markers <- function(model, type) {
    generated <- generate_cells(model, condition = stats::setNames(100, type), steps = 20, seed = 2)
    mean(as.matrix(SingleCellExperiment::logcounts(generated))[c("NKG7", "GNLY", "GZMB", "PRF1"), ])
  }
  # Seed 1: NKG7, GNLY, GZMB, PRF1 at 3.7, 2.5, 2.2, 2.0 in generated NK
  # cells (real NK: 5.0, 4.9, 3.9, 3.1), 0.5, 0.2, 0.1, 0.3 in CD4 T cells.
  expect_gt(nk_markers(tuned, "NK") - nk_markers(tuned, "Naive CD4 T"), 1)
})
