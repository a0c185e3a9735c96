# transfer_cells(): counterfactual cells, on the shared tiny models.

test_that("transfer_cells() moves cells to the asked-for condition and keeps their names and sizes", {
  model <- tiny_flow_model()
  sce <- pbmc_sce()
  b_cells <- sce[, sce$cell_type == "B"][, 1:40]
  moved <- transfer_cells(model, b_cells, to = "NK", steps = 20, seed = 1)
  expect_s4_class(moved, "SingleCellExperiment")
  expect_identical(colnames(moved), colnames(b_cells))
  expect_identical(rownames(moved), model$genes)
  expect_true(all(moved$cell_type == "NK"))
  expect_true(all(moved$transferred_from == "B"))
  expect_true(all_whole(SingleCellExperiment::counts(moved)))
  # Counts are the cell's own library size, rounded gene by gene.
  observed <- Matrix::colSums(SingleCellExperiment::counts(b_cells)[model$genes, ])
  expect_lt(max(abs(moved$library_size / observed - 1)), 0.1)
  # One row of a data.frame, or one level per cell, say the same.
  again <- transfer_cells(model, b_cells, to = data.frame(cell_type = "NK"), steps = 20, seed = 1)
  expect_identical(SingleCellExperiment::counts(again), SingleCellExperiment::counts(moved))
  per_cell <- transfer_cells(model, b_cells, to = rep(c("NK", "B"), 20), steps = 20, seed = 1)
  expect_identical(as.character(per_cell$cell_type), rep(c("NK", "B"), 20))
})

test_that("transfer to the cell's own condition gives the cell back, closer to itself than to others", {
  model <- tiny_flow_model()
  sce <- pbmc_sce()[, 1:60]
  back <- transfer_cells(model, sce, to = as.character(sce$cell_type), steps = 50, seed = 2)
  counts <- as.matrix(SingleCellExperiment::counts(sce)[model$genes, ])
  observed <- log1p(t(t(counts) / colSums(counts)) * 1e4)
  got <- as.matrix(SingleCellExperiment::logcounts(back))
  self <- mean(vapply(seq_len(60), function(i) stats::cor(got[, i], observed[, i]), 0))
  other <- mean(vapply(seq_len(60), function(i) stats::cor(got[, i], observed[, (i %% 60) + 1]), 0))
  expect_gt(self, other + 0.1)
})

test_that("latent models transfer through their latent flow", {
  cells <- pbmc_sce()[, seq(1, by = 5, length.out = 200)]
  model <- fit_expression_model(cells, "latent_mlp", condition = "cell_type", epochs = 2, training = list(vae_epochs = 2),
                                latent_dim = 4, vae_hidden = 32, vae_layers = 1, hidden = 32, n_layers = 1,
                                verbose = FALSE, seed = 1)
  moved <- transfer_cells(model, cells[, 1:20], to = "B", seed = 3)
  expect_equal(dim(moved), c(length(model$genes), 20L))
  expect_true(all(moved$cell_type == "B"))
  expect_identical(SingleCellExperiment::counts(transfer_cells(model, cells[, 1:20], to = "B", seed = 3)),
                   SingleCellExperiment::counts(moved))
  # noise = "cell": each count at its own quantile. The latent shift to the
  # cells' own type moves nothing, so the observed counts come back exactly.
  own <- as.character(cells$cell_type[1:20])
  back <- transfer_cells(model, cells[, 1:20], to = own, mode = "shift", noise = "cell", seed = 3)
  expect_equal(as.matrix(SingleCellExperiment::counts(back)),
               as.matrix(SingleCellExperiment::counts(cells)[model$genes, 1:20]), ignore_attr = TRUE)
  expect_identical(S4Vectors::metadata(back)$exprflow$noise, "cell")
  # "cell" is the latent models' default; "drawn" draws new counts.
  expect_identical(S4Vectors::metadata(moved)$exprflow$noise, "cell")
  drawn <- transfer_cells(model, cells[, 1:20], to = "B", noise = "drawn", seed = 3)
  expect_true(all_whole(SingleCellExperiment::counts(drawn)))
  expect_false(identical(SingleCellExperiment::counts(drawn), SingleCellExperiment::counts(moved)))
})

test_that("transfer_cells() names what is wrong", {
  model <- tiny_flow_model()
  b_cells <- pbmc_sce()[, 1:10]
  expect_error(transfer_cells(model, b_cells, to = "Alien"), "unknown condition level\\(s\\) 'Alien'")
  expect_error(transfer_cells(model, b_cells, to = data.frame(stim = "x")), "'stim', which are not covariates")
  expect_error(transfer_cells(model, b_cells, to = c("B", "NK")), "one per cell \\(10\\)")
  expect_error(transfer_cells(model, b_cells, to = "B", method = "ddpm"), "deterministic samplers invert")
  expect_error(transfer_cells(model, SingleCellExperiment::counts(b_cells), to = "B"), "give the cells' own condition")
  expect_error(transfer_cells(tiny_unconditional_model(), b_cells, to = "B"), "needs a conditional model")
  expect_error(transfer_cells(model, b_cells, to = "B", noise = "cell"), "`noise = \"cell\"` needs a latent model")
  expect_error(transfer_cells(model, b_cells, to = "B", noise = "fresh"), "`noise` must be NULL")
})

test_that("one cell is reconstructed and transferred under its own condition column", {
  model <- tiny_flow_model()
  one <- pbmc_sce()[, 1]
  # With one cell, the model's column name is not taken for that cell's level.
  rec <- reconstruct_cells(model, one, steps = 2, seed = 1)
  expect_identical(as.character(rec$cell_type), as.character(one$cell_type))
  moved <- transfer_cells(model, one, to = "NK", steps = 2, seed = 1)
  expect_identical(as.character(moved$transferred_from), as.character(one$cell_type))
  # Both columns carry the model's levels, so they can be tabulated together.
  expect_identical(levels(moved$transferred_from), levels(moved$cell_type))
  expect_identical(as.character(moved$cell_type), "NK")
})

test_that("transfer_cells() takes a level of a logical or whole-number covariate as generate_cells() does", {
  cells <- pbmc_sce()[, seq(1, 1200, by = 3)]
  cells$cluster <- as.integer(factor(cells$cell_type)) * 5L
  model <- fit_expression_model(cells, "state_mlp", condition = "cluster", epochs = 1, hidden = 32, n_layers = 1,
                                batch_size = 128, verbose = FALSE, seed = 1)
  moved <- transfer_cells(model, cells[, 1:5], to = 10, steps = 2, seed = 1)
  expect_identical(as.character(moved$cluster), rep("10", 5))
  expect_identical(moved$cluster, generate_cells(model, 5, condition = 10, steps = 2, seed = 1)$cluster)
})

test_that("a latent flow generates a combination no training cell had at a seen one plus the latent shift", {
  cells <- pbmc_sce()[, seq(1, by = 3, length.out = 400)]
  cells$stim <- rep(c("ctrl", "stim"), length.out = ncol(cells))
  model <- fit_expression_model(cells[, !(cells$cell_type == "B" & cells$stim == "stim")], "latent_mlp",
                                condition = c("cell_type", "stim"), epochs = 2, training = list(vae_epochs = 2),
                                latent_dim = 4, vae_hidden = 32, vae_layers = 1, hidden = 32, n_layers = 1,
                                verbose = FALSE, seed = 1)
  unseen <- data.frame(cell_type = "B", stim = "stim")
  shifted <- generate_cells(model, condition = unseen, n = 20, seed = 1)
  expect_identical(S4Vectors::metadata(shifted)$exprflow$unseen, "shift")
  expect_true(all(shifted$cell_type == "B" & shifted$stim == "stim"))
  asked <- generate_cells(model, condition = unseen, n = 20, seed = 1, unseen = "joint")
  expect_false(identical(SingleCellExperiment::counts(asked), SingleCellExperiment::counts(shifted)))
  # The shift weighs the other types by how alike they start (default), or alike.
  alike <- generate_cells(model, condition = unseen, n = 20, seed = 1, shift_bandwidth = Inf)
  expect_false(identical(SingleCellExperiment::counts(alike), SingleCellExperiment::counts(shifted)))
  expect_error(generate_cells(model, condition = unseen, n = 5, unseen = "joint", shift_bandwidth = 1),
               "only `unseen = \"shift\"` uses")
  # By default ("both") its cells are generated at the seen combination and
  # moved as transfer_cells() moves observed cells; "model" draws them from
  # the decoder at the shifted codes.
  at_control <- generate_cells(model, condition = data.frame(cell_type = "B", stim = "ctrl"), n = 20, seed = 1)
  moved <- transfer_cells(model, at_control, to = data.frame(stim = "stim"), mode = "shift", seed = 1)
  expect_identical(SingleCellExperiment::counts(shifted), SingleCellExperiment::counts(moved))
  expect_identical(S4Vectors::metadata(shifted)$exprflow$response, "both")
  drawn <- generate_cells(model, condition = unseen, n = 20, seed = 1, response = "model")
  expect_false(identical(SingleCellExperiment::counts(drawn), SingleCellExperiment::counts(shifted)))
  observed <- generate_cells(model, condition = unseen, n = 20, seed = 1, response = "observed")
  expect_identical(SingleCellExperiment::counts(observed),
                   SingleCellExperiment::counts(transfer_cells(model, at_control, to = data.frame(stim = "stim"),
                                                               mode = "shift", seed = 1, response = "observed")))
  expect_error(generate_cells(model, condition = unseen, n = 5, unseen = "joint", response = "both"),
               "needs `unseen = \"shift\"`")
  expect_error(generate_cells(model, condition = unseen, n = 5, response = "drawn"), "`response` must be NULL")
  # A combination seen in training is sampled as it is either way.
  seen <- data.frame(cell_type = "NK", stim = "stim")
  expect_identical(SingleCellExperiment::counts(generate_cells(model, condition = seen, n = 20, seed = 1)),
                   SingleCellExperiment::counts(generate_cells(model, condition = seen, n = 20, seed = 1,
                                                               unseen = "joint")))
  expect_error(generate_cells(model, n = 5, unseen = "nearest"), "`unseen` must be NULL")
  expect_error(generate_cells(tiny_flow_model(), n = 5, unseen = "shift"), "needs a latent flow")
})
