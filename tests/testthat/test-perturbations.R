# Perturbation sets from R: fit with perturbation = / control = / dose =,
# labels in any member order, combinations never seen in training asked for
# by generate_cells() and transfer_cells(), doses, and errors that name the
# argument.

# Blocks of 20 well-expressed genes (ranked 21-40 and 41-60 by mean count):
# A multiplies the first by 6, B the second; no cell has both.
perturbation_blocks <- function() {
  ranked <- order(Matrix::rowMeans(SingleCellExperiment::counts(pbmc_sce())), decreasing = TRUE)
  list(A = ranked[21:40], B = ranked[41:60])
}

perturbation_cells <- function() {
  .cached("perturbation_cells", {
    sce <- pbmc_sce()[, seq(1, 1200, by = 2)]
    sce$target <- rep(c("non-targeting", "A", "B"), length.out = ncol(sce))
    sce$dose <- ifelse(sce$target == "non-targeting", NA, rep(c(10, 100), each = 3, length.out = ncol(sce)))
    counts <- SingleCellExperiment::counts(sce)
    blocks <- perturbation_blocks()
    for (member in c("A", "B")) {
      cells <- sce$target == member
      counts[blocks[[member]], cells] <- counts[blocks[[member]], cells] * 6
    }
    SingleCellExperiment::counts(sce) <- counts
    sce
  })
}

block_mean <- function(sce, member) {
  genes <- rownames(pbmc_sce())[perturbation_blocks()[[member]]]
  mean(as.matrix(SingleCellExperiment::logcounts(sce))[genes, ])
}

test_that("a VAE moves control cells to a combination no cell had by adding its members' shifts", {
  cells <- perturbation_cells()
  model <- fit_expression_model(cells, architecture = "vae", perturbation = "target", control = "non-targeting",
                                epochs = 40, vae_hidden = 128, latent_dim = 10, batch_size = 64,
                                verbose = FALSE, seed = 1)
  expect_identical(model$perturbation$covariate, "target")
  expect_identical(model$perturbation$control, "non-targeting")
  expect_setequal(model$perturbation$members, c("A", "B"))
  expect_output(print(model), "perturbed  : target \\(2 perturbations in 2 combinations; control \"non-targeting\"\\)")
  control <- cells[, cells$target == "non-targeting"]
  kept <- transfer_cells(model, control, to = data.frame(target = "non-targeting"), seed = 1)
  a <- transfer_cells(model, control, to = data.frame(target = "A"), seed = 1)
  # Written in either order, the combination is one level.
  both <- transfer_cells(model, control, to = data.frame(target = "B + A"), seed = 1)
  expect_true(all(as.character(both$target) == "A+B"))
  # In the data each block rises by 1.3 log; the shifts (seed 1): A's block
  # +0.99 to A (B's -0.43), +0.62 and +0.81 to A+B.
  a_up <- block_mean(a, "A") - block_mean(kept, "A")
  expect_gt(a_up, 0.5)
  expect_lt(abs(block_mean(a, "B") - block_mean(kept, "B")), 0.6 * a_up)
  expect_gt(block_mean(both, "A") - block_mean(kept, "A"), 0.4 * a_up)
  expect_gt(block_mean(both, "B") - block_mean(kept, "B"), 0.4 * a_up)
  expect_error(transfer_cells(model, control, to = data.frame(target = "A+C")),
               "unknown perturbation\\(s\\) 'C' in `to` \\(covariate 'target'\\); the model knows: 'A', 'B'")
})

test_that("a target no cell had, one of the model's genes, moves cells like its most co-expressed target", {
  # A is named after a B-cell gene, B after a monocyte gene; MS4A1, never
  # knocked out, is co-expressed with CD79A in B cells.
  cells <- perturbation_cells()
  cells$target <- c(`non-targeting` = "non-targeting", A = "CD79A", B = "LYZ")[cells$target]
  model <- fit_expression_model(cells, architecture = "vae", perturbation = "target", control = "non-targeting",
                                epochs = 40, vae_hidden = 128, latent_dim = 10, batch_size = 64,
                                verbose = FALSE, seed = 1)
  control <- cells[, cells$target == "non-targeting"]
  kept <- transfer_cells(model, control, to = data.frame(target = "non-targeting"), seed = 1)
  cd79a <- transfer_cells(model, control, to = data.frame(target = "CD79A"), seed = 1)
  expect_gt(block_mean(cd79a, "A") - block_mean(kept, "A"), 0.5)
  # MS4A1 shares CD79A's partners, not LYZ's (over the control cells, log
  # MS4A1 correlates 0.70 with CD79A, -0.19 with LYZ): CD79A alone stands
  # in, so the cells move exactly as to CD79A.
  unseen <- transfer_cells(model, control, to = data.frame(target = "MS4A1"), seed = 1)
  expect_true(all(as.character(unseen$target) == "MS4A1"))
  expect_identical(SingleCellExperiment::counts(unseen), SingleCellExperiment::counts(cd79a))
  # Only the latent shift predicts it; a name that is no gene has no stand-ins.
  expect_error(generate_cells(model, condition = data.frame(target = "MS4A1")),
               "unknown perturbation\\(s\\) 'MS4A1' .*transfer_cells\\(mode = \"shift\"\\)")
  expect_error(transfer_cells(model, control, to = data.frame(target = "drugX")), "unknown perturbation\\(s\\) 'drugX'")

  # Stand-ins from knowledge: a target that shares gene sets or network
  # neighbours with LYZ (and none with CD79A) moves exactly as to LYZ, be it
  # a measured gene (MS4A1, whose co-expression would pick CD79A) or not.
  lyz <- transfer_cells(model, control, to = data.frame(target = "LYZ"), seed = 1)
  sets <- list(myeloid = c("LYZ", "drugX", "MS4A1", "S100A8"), b_cell = c("CD79A", "CD19"))
  for (target in c("drugX", "MS4A1")) {
    by_sets <- transfer_cells(model, control, to = data.frame(target = target), stand_ins = sets, seed = 1)
    expect_identical(SingleCellExperiment::counts(by_sets), SingleCellExperiment::counts(lyz))
  }
  network <- data.frame(regulator = c("LYZ", "SPI1"), target = c("drugX", "CD79A"))
  by_network <- transfer_cells(model, control, to = data.frame(target = "drugX"), stand_ins = network, seed = 1)
  expect_identical(SingleCellExperiment::counts(by_network), SingleCellExperiment::counts(lyz))
  expect_false(identical(SingleCellExperiment::counts(lyz), SingleCellExperiment::counts(cd79a)))
  # Names neither the genes nor the knowledge hold stay unknown.
  expect_error(transfer_cells(model, control, to = data.frame(target = "drugY"), stand_ins = sets),
               "unknown perturbation\\(s\\) 'drugY'")
  expect_error(transfer_cells(model, control, to = data.frame(target = "drugX"), stand_ins = sets, mode = "joint"),
               "`stand_ins` choose the stand-ins of unseen targets, which only `mode = \"shift\"` has")
  expect_error(transfer_cells(model, control, to = data.frame(target = "drugX"), stand_ins = c("LYZ", "drugX")),
               "`stand_ins` must be NULL \\(co-expression\\), a named list of gene sets")
  expect_error(transfer_cells(model, control, to = data.frame(target = "drugX"),
                              stand_ins = list(other = c("drugX", "MS4A1"))),
               "`stand_ins` names none of the model's trained targets \\('CD79A', 'LYZ'\\)")
  expect_error(transfer_cells(model, control, to = data.frame(target = "drugX"), stand_ins = data.frame(tf = "LYZ")),
               "`stand_ins` as a network needs columns 'regulator' and 'target'")

  # Weight 0 on the stand-ins: the average of the trained targets that could
  # stand in, whatever the knowledge (here CD79A and LYZ both times). With
  # two trained targets there is nothing to leave out, so "validated" keeps
  # the stand-ins alone (weight 1, the default).
  average <- transfer_cells(model, control, to = data.frame(target = "MS4A1"), stand_in_weight = 0, seed = 1)
  expect_identical(SingleCellExperiment::counts(average),
                   SingleCellExperiment::counts(transfer_cells(model, control, to = data.frame(target = "drugX"),
                                                               stand_ins = sets, stand_in_weight = 0, seed = 1)))
  expect_false(identical(SingleCellExperiment::counts(average), SingleCellExperiment::counts(cd79a)))
  expect_identical(SingleCellExperiment::counts(transfer_cells(model, control, to = data.frame(target = "MS4A1"),
                                                               stand_in_weight = "validated", seed = 1)),
                   SingleCellExperiment::counts(unseen))
  expect_error(transfer_cells(model, control, to = data.frame(target = "MS4A1"), stand_in_weight = 2),
               "`stand_in_weight` must be a number in \\[0, 1\\] or \"validated\"")
  expect_error(transfer_cells(model, control, to = data.frame(target = "MS4A1"), stand_in_weight = 0.5, mode = "joint"),
               "`stand_in_weight` weighs the stand-ins of unseen targets, which only `mode = \"shift\"` has")
})

test_that("gene-space models generate unseen combinations and doses; errors name the argument", {
  cells <- perturbation_cells()
  model <- fit_expression_model(cells, architecture = "state_mlp", condition = "cell_type", perturbation = "target",
                                control = "non-targeting", dose = "dose", epochs = 2, hidden = 64, n_layers = 1,
                                batch_size = 128, verbose = FALSE, seed = 1)
  expect_identical(names(model$covariates), c("cell_type", "target"))
  expect_identical(model$perturbation$dose_column, "dose")
  expect_output(print(model), "doses from 'dose'")
  table <- data.frame(cell_type = "B", target = c("A+B", "A", "non-targeting"), dose = c("10+100", "100", NA))
  generated <- generate_cells(model, condition = table, steps = 4, seed = 1)
  expect_identical(as.character(generated$target), c("A+B", "A", "non-targeting"))
  again <- generate_cells(model, condition = table, steps = 4, seed = 1)
  expect_identical(SingleCellExperiment::counts(again), SingleCellExperiment::counts(generated))
  # Doses count: the same cells at other doses differ.
  other <- generate_cells(model, condition = transform(table, dose = c("1+1", "1", NA)), steps = 4, seed = 1)
  expect_false(identical(SingleCellExperiment::counts(other)[, 1:2], SingleCellExperiment::counts(generated)[, 1:2]))
  expect_identical(SingleCellExperiment::counts(other)[, 3], SingleCellExperiment::counts(generated)[, 3])
  expect_error(generate_cells(model, condition = data.frame(cell_type = "B", target = "A"), steps = 4),
               "needs a column 'dose'")
  expect_error(generate_cells(model, condition = data.frame(cell_type = "B", target = "A+B", dose = "10"), steps = 4),
               "has 2 member\\(s\\)")
  # Saved and loaded, it is the same model.
  path <- tempfile(fileext = ".exprflow")
  on.exit(unlink(path))
  save_model(model, path)
  loaded <- load_model(path)
  expect_identical(loaded$perturbation, model$perturbation)
  expect_identical(SingleCellExperiment::counts(generate_cells(loaded, condition = table, steps = 4, seed = 1)),
                   SingleCellExperiment::counts(generated))
  # Transfer keeps a cell's own perturbation and dose where `to` leaves them.
  moved <- transfer_cells(model, cells[, 1:6], to = data.frame(cell_type = "B"), steps = 4, seed = 1)
  expect_identical(as.character(moved$target), cells$target[1:6])

  expect_error(fit_expression_model(cells, perturbation = "target", epochs = 1, verbose = FALSE),
               "`control` must name the label of unperturbed cells in `perturbation` \\(e.g. \"non-targeting\"\\)")
  expect_error(fit_expression_model(cells, perturbation = "target", control = "ctrl", epochs = 1, verbose = FALSE),
               "`control` is \"ctrl\" but no cell has that label")
  expect_error(fit_expression_model(cells, control = "ctrl", epochs = 1, verbose = FALSE),
               "describe a `perturbation`")
  expect_error(fit_expression_model(cells, condition = "target", perturbation = "target", control = "A",
                                    epochs = 1, verbose = FALSE), "both as `condition` and as `perturbation`")
  bad <- cells
  bad$dose[bad$target == "A"][1] <- "5+5"
  expect_error(fit_expression_model(bad, perturbation = "target", control = "non-targeting", dose = "dose",
                                    epochs = 1, verbose = FALSE), "`dose` of cell .* has 1 member")
})

test_that("labels are made canonical and doses follow their members", {
  canonical <- exprflow:::.canonical_perturbations(c("B+A", "ctrl", NA, " C "), "ctrl")
  expect_identical(canonical$labels, c("A+B", "ctrl", NA, "C"))
  doses <- exprflow:::.perturbation_doses(c("1+2", NA, NA, "5"), canonical)
  expect_identical(doses, matrix(c(2, 0, 0, 5, 1, 0, 0, 0), 4, 2))
  expect_error(exprflow:::.canonical_perturbations("A+A", "ctrl"), "naming a member twice: 'A\\+A'")
  expect_error(exprflow:::.canonical_perturbations("A+", "ctrl"), "empty member")
})
