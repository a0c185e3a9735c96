# Models of several categorical covariates from R: fit with condition =
# c(...), generate from a data.frame, guide per covariate, transfer one
# covariate while keeping the others, reconstruct, save and load.

two_covariate_cells <- function() {
  sce <- pbmc_sce()[, seq(1, 1200, by = 3)]
  # A second covariate with a real effect: "high" cells get their counts
  # of 20 well-expressed genes quadrupled (dosed_genes()).
  sce$dose <- rep(c("low", "high"), length.out = ncol(sce))
  counts <- SingleCellExperiment::counts(sce)
  high <- sce$dose == "high"
  counts[dosed_genes(), high] <- counts[dosed_genes(), high] * 4
  SingleCellExperiment::counts(sce) <- counts
  sce
}

# The 20 genes ranked 21-40 by mean count in the example data.
dosed_genes <- function() {
  order(Matrix::rowMeans(SingleCellExperiment::counts(pbmc_sce())), decreasing = TRUE)[21:40]
}

two_covariate_model <- function() {
  .cached("two_covariate_model", fit_expression_model(
    two_covariate_cells(), architecture = "state_mlp", condition = c("cell_type", "dose"), epochs = 30,
    hidden = 256, n_layers = 1, batch_size = 64, verbose = FALSE, seed = 1))
}

test_that("a model of two covariates keeps both, with their levels and split", {
  model <- two_covariate_model()
  expect_identical(names(model$covariates), c("cell_type", "dose"))
  expect_identical(model$covariates$dose, c("high", "low"))
  expect_identical(model$condition, c("cell_type", "dose"))
  expect_equal(unname(model$level_counts[c("dose=high", "dose=low")]), c(200, 200))
  expect_true(all(c("dose=high", "cell_type=B") %in% model$split$condition))
  expect_output(print(model), "condition  : dose \\(2 levels: high, low\\)")
  path <- tempfile(fileext = ".exprflow")
  on.exit(unlink(path))
  save_model(model, path)
  loaded <- load_model(path)
  expect_identical(loaded$covariates, model$covariates)
  table <- data.frame(cell_type = "B", dose = c("low", "high"))
  expect_identical(SingleCellExperiment::counts(generate_cells(loaded, condition = table, steps = 5, seed = 1)),
                   SingleCellExperiment::counts(generate_cells(model, condition = table, steps = 5, seed = 1)))
})

test_that("generate_cells() takes a data.frame of covariates and guidance per covariate", {
  model <- two_covariate_model()
  table <- data.frame(cell_type = "CD14+ Mono", dose = rep(c("low", "high"), each = 100))
  cells <- generate_cells(model, condition = table, steps = 20, seed = 2)
  expect_identical(as.character(cells$dose), table$dose)
  expect_true(all(cells$cell_type == "CD14+ Mono"))
  logs <- as.matrix(SingleCellExperiment::logcounts(cells))
  shift <- function(sce) {
    l <- as.matrix(SingleCellExperiment::logcounts(sce))
    genes <- rownames(pbmc_sce())[dosed_genes()]
    mean(l[genes, sce$dose == "high"]) - mean(l[genes, sce$dose == "low"])
  }
  # The dose effect is learnt (a four-fold rise of the dosed genes) ...
  expect_gt(shift(cells), 0.2)
  # ... and guidance by dose alone at 0 leaves the dose unknown: no shift.
  unguided <- generate_cells(model, condition = table, steps = 20, seed = 2, guidance_scale = c(dose = 0))
  expect_lt(abs(shift(unguided)), 0.5 * shift(cells))
  expect_identical(S4Vectors::metadata(unguided)$exprflow$guidance_scale, c(dose = 0))
  # One row is repeated n times; a covariate left out is unconditional.
  expect_equal(ncol(generate_cells(model, n = 7, condition = data.frame(dose = "high"), steps = 5)), 7L)
  expect_true(all(is.na(generate_cells(model, n = 3, condition = data.frame(dose = "high"), steps = 5)$cell_type)))
})

test_that("transfer_cells() changes the covariates in `to` and keeps the others", {
  model <- two_covariate_model()
  cells <- two_covariate_cells()
  low <- cells[, cells$dose == "low"][, 1:30]
  moved <- transfer_cells(model, low, to = data.frame(dose = "high"), steps = 20, seed = 1)
  expect_true(all(moved$dose == "high"))
  expect_identical(as.character(moved$cell_type), as.character(low$cell_type))
  expect_identical(as.character(moved$transferred_from), paste(low$cell_type, "/ low"))
  before <- log1p(t(t(as.matrix(SingleCellExperiment::counts(low)[model$genes, ])) /
                      Matrix::colSums(SingleCellExperiment::counts(low)[model$genes, ])) * 1e4)
  after <- as.matrix(SingleCellExperiment::logcounts(moved))
  genes <- rownames(pbmc_sce())[dosed_genes()]
  expect_gt(mean(after[genes, ]) - mean(before[genes, ]), 0.2)
  # Every mode moves the dosed genes up; the mode is kept in the metadata.
  for (mode in c("marginal", "contrast")) {
    other <- transfer_cells(model, low, to = data.frame(dose = "high"), steps = 20, seed = 1, mode = mode)
    expect_gt(mean(as.matrix(SingleCellExperiment::logcounts(other))[genes, ]) - mean(before[genes, ]), 0.2)
    expect_identical(S4Vectors::metadata(other)$exprflow$mode, mode)
  }
  expect_error(transfer_cells(model, low, to = data.frame(dose = "high"), mode = "sideways"), "'arg' should be one of")
  rec <- reconstruct_cells(model, low, steps = 10, seed = 1)
  expect_identical(as.character(rec$dose), rep("low", 30))
})

test_that("transfer_cells(mode = \"shift\") moves a held-out combination by the other contexts' latent shift", {
  cells <- two_covariate_cells()
  # B cells are never seen at the high dose: the shift comes from the other types.
  held_out <- cells$cell_type == "B" & cells$dose == "high"
  model <- fit_expression_model(cells[, !held_out], architecture = "vae", condition = c("cell_type", "dose"),
                                epochs = 40, vae_hidden = 128, latent_dim = 10, batch_size = 64,
                                verbose = FALSE, seed = 1)
  low <- cells[, cells$cell_type == "B" & cells$dose == "low"]
  genes <- rownames(pbmc_sce())[dosed_genes()]
  dosed_mean <- function(sce) mean(as.matrix(SingleCellExperiment::logcounts(sce))[genes, ])
  kept <- transfer_cells(model, low, to = data.frame(dose = "low"), mode = "shift", seed = 1)
  moved <- transfer_cells(model, low, to = data.frame(dose = "high"), mode = "shift", seed = 1)
  expect_gt(dosed_mean(moved) - dosed_mean(kept), 0.2)
  expect_true(all(moved$dose == "high") && all(moved$cell_type == "B"))
  expect_identical(S4Vectors::metadata(moved)$exprflow$mode, "shift")
  # The VAE's decoder does not read the condition: without the shift nothing
  # moves, so the shift is the vae's default.
  joint <- transfer_cells(model, low, to = data.frame(dose = "high"), mode = "joint", seed = 1)
  expect_lt(abs(dosed_mean(joint) - dosed_mean(kept)), 0.1)
  by_default <- transfer_cells(model, low, to = data.frame(dose = "high"), seed = 1)
  expect_identical(SingleCellExperiment::counts(by_default), SingleCellExperiment::counts(moved))
  # The other types' shifts weighed by how alike their low-dose cells are to
  # B's (the default), or each type alike (scGen's average): both move the
  # dosed genes, by different shifts.
  alike <- transfer_cells(model, low, to = data.frame(dose = "high"), mode = "shift", seed = 1, shift_bandwidth = Inf)
  expect_gt(dosed_mean(alike) - dosed_mean(kept), 0.2)
  expect_false(identical(SingleCellExperiment::counts(alike), SingleCellExperiment::counts(moved)))
  stated <- transfer_cells(model, low, to = data.frame(dose = "high"), mode = "shift", seed = 1,
                           shift_bandwidth = 0.25)
  expect_identical(SingleCellExperiment::counts(stated), SingleCellExperiment::counts(moved))
  expect_error(transfer_cells(model, low, to = data.frame(dose = "high"), mode = "shift", shift_bandwidth = 0),
               "`shift_bandwidth` must be a positive number")
  expect_error(transfer_cells(model, low, to = data.frame(dose = "high"), mode = "joint", shift_bandwidth = 1),
               "only `mode = \"shift\"` has")
  expect_error(transfer_cells(two_covariate_model(), low, to = data.frame(dose = "high"), mode = "shift"),
               "needs a latent model")

  # The observed response: the other types'
  # observed change of the dosed genes (a fourfold dose in every type)
  # carried to B, with each cell's departure from it as the model gives it.
  # It lands nearer the real high-dose B cells, never seen, than the
  # decoder's own response (measured: 0.15 and 0.57 away in mean log
  # expression of the dosed genes, which the dose moves by 1.08).
  real_high <- cells[, held_out]
  SingleCellExperiment::logcounts(real_high) <- exprflow:::.log_normalise(SingleCellExperiment::counts(real_high), 1e4)
  observed <- transfer_cells(model, low, to = data.frame(dose = "high"), mode = "shift", seed = 1,
                             response = "observed")
  own_response <- transfer_cells(model, low, to = data.frame(dose = "high"), mode = "shift", seed = 1,
                                 response = "model")
  expect_gt(dosed_mean(own_response) - dosed_mean(kept), 0.2)
  expect_lt(abs(dosed_mean(observed) - dosed_mean(real_high)) + 0.3,
            abs(dosed_mean(own_response) - dosed_mean(real_high)))
  expect_lt(abs(dosed_mean(observed) - dosed_mean(real_high)), 0.25)
  # "both", the default: the mean change halfway between the observed one
  # and the decoder's (they are 0.4 apart here).
  both <- transfer_cells(model, low, to = data.frame(dose = "high"), mode = "shift", seed = 1, response = "both")
  expect_identical(SingleCellExperiment::counts(both), SingleCellExperiment::counts(moved))
  expect_lt(abs(dosed_mean(both) - (dosed_mean(observed) + dosed_mean(own_response)) / 2), 0.05)
  expect_identical(S4Vectors::metadata(moved)$exprflow$response, "both")
  expect_equal(Matrix::colSums(SingleCellExperiment::counts(observed)), Matrix::colSums(SingleCellExperiment::counts(low)),
               tolerance = 0.1)
  # Saved and loaded, the model keeps the training cells' mean expression.
  path <- tempfile(fileext = ".exprflow")
  on.exit(unlink(path))
  save_model(model, path)
  expect_identical(SingleCellExperiment::counts(transfer_cells(load_model(path), low, to = data.frame(dose = "high"),
                                                               mode = "shift", seed = 1, response = "observed")),
                   SingleCellExperiment::counts(observed))
  expect_error(transfer_cells(model, low, to = data.frame(dose = "high"), mode = "joint", response = "observed"),
               "needs `mode = \"shift\"`")
  expect_error(transfer_cells(model, low, to = data.frame(dose = "high"), mode = "shift", noise = "drawn",
                              response = "observed"), "needs `noise = \"cell\"`")
  # A cell without counts stays empty and leaves the others as they were.
  emptied <- low
  SingleCellExperiment::counts(emptied)[, 1] <- 0
  with_empty <- transfer_cells(model, emptied, to = data.frame(dose = "high"), mode = "shift", seed = 1)
  expect_true(all(SingleCellExperiment::counts(with_empty)[, 1] == 0))
  expect_false(anyNA(as.matrix(SingleCellExperiment::counts(with_empty))))
  expect_lt(abs(dosed_mean(with_empty[, -1]) - dosed_mean(moved[, -1])), 0.05)
  # Cells moved to their own levels are returned as they were.
  expect_identical(SingleCellExperiment::counts(transfer_cells(model, low, to = data.frame(dose = "low"),
                                                               mode = "shift", seed = 1, response = "observed")),
                   SingleCellExperiment::counts(low))
  expect_error(transfer_cells(model, low, to = data.frame(dose = "high"), response = "seen"),
               "`response` must be NULL, \"model\", \"observed\" or \"both\"")
  expect_error(transfer_cells(model, low, to = data.frame(dose = "high"), mode = "joint", response = "both"),
               "`response = \"both\"` anchors the latent shift: it needs `mode = \"shift\"`")
})

test_that("several covariates: errors name the argument and the covariate", {
  model <- two_covariate_model()
  expect_error(generate_cells(model, n = 5, steps = 5), "several covariates .*data.frame")
  expect_error(generate_cells(model, condition = data.frame(batch = "x"), steps = 5), "'batch', which are not covariates")
  expect_error(generate_cells(model, condition = data.frame(dose = "max"), steps = 5),
               "unknown condition level\\(s\\) 'max'.*covariate 'dose'")
  expect_error(generate_cells(model, condition = data.frame(dose = c("low", "high")), n = 3, steps = 5),
               "has 2 rows; give one row, or one per cell \\(3\\)")
  expect_error(generate_cells(model, n = 2, condition = data.frame(dose = "low"), guidance_scale = c(batch = 2)),
               "`guidance_scale` names 'batch'")
  expect_error(transfer_cells(model, two_covariate_cells()[, 1:5], to = "high"), "give `to` as a data.frame")
  expect_error(fit_expression_model(two_covariate_cells(), "state_mlp", condition = c("cell_type", "cell_type")),
               "names a column twice")
  expect_error(fit_expression_model(two_covariate_cells(), "state_mlp", condition = data.frame(a = 1:3)),
               "`condition\\$a` has 3 values for 400 cells")
  # A misspelt column among several is named, not taken for cells' levels.
  expect_error(fit_expression_model(two_covariate_cells(), "state_mlp", condition = c("cell_type", "doze")),
               "condition column\\(s\\) 'doze' do not exist")
})

test_that("two cells of a two-covariate model are read by the model's column names", {
  model <- two_covariate_model()
  two <- two_covariate_cells()[, 1:2]
  rec <- reconstruct_cells(model, two, steps = 2, seed = 1)
  expect_identical(as.character(rec$dose), two$dose)
  moved <- transfer_cells(model, two, to = data.frame(dose = "high"), steps = 2, seed = 1)
  expect_identical(as.character(moved$dose), c("high", "high"))
  expect_identical(as.character(moved$cell_type), as.character(two$cell_type))
})

test_that("condition_path takes the covariates into a DiT backbone as tokens", {
  cells <- two_covariate_cells()[, 1:120]
  for (path in c("cross_attention", "tokens")) {
    model <- fit_tiny(cells, condition = c("cell_type", "dose"), condition_path = path)
    expect_identical(model$spec$condition_path, path)
    generated <- generate_cells(model, condition = data.frame(cell_type = "B", dose = c("low", "high")), steps = 3,
                                seed = 1, guidance_scale = c(dose = 2))
    expect_identical(as.character(generated$dose), c("low", "high"))
  }
  expect_error(fit_tiny(cells, condition = "cell_type", condition_path = "film"),
               "'condition_path' must be 'adaln', 'cross_attention' or 'tokens'")
  expect_error(fit_tiny(cells, architecture = "state_mlp", condition = "cell_type", condition_path = "tokens"),
               "condition_path")
})
