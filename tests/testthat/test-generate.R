# R/generate.R: generate_cells().

counts_of <- function(sce) SummarizedExperiment::assay(sce, "counts")
logcounts_of <- function(sce) SummarizedExperiment::assay(sce, "logcounts")

# The checks every generated SingleCellExperiment must pass.
expect_generated_cells <- function(sce, model, n) {
  expect_s4_class(sce, "SingleCellExperiment")
  expect_identical(dim(sce), c(length(model$genes), as.integer(n)))
  expect_identical(rownames(sce), model$genes)
  expect_false(anyNA(colnames(sce)))
  expect_false(anyDuplicated(colnames(sce)) > 0)
  expect_true(all(c("counts", "logcounts") %in% SummarizedExperiment::assayNames(sce)))
  counts <- counts_of(sce)
  expect_true(all_whole(counts))
  expect_true(all(as.matrix(counts) >= 0))
  logcounts <- as.matrix(logcounts_of(sce))
  expect_true(all(is.finite(logcounts)))
  expect_true(all(logcounts >= 0))
  expect_identical(dimnames(counts), dimnames(logcounts_of(sce)))
  # As for observed cells: library_size is each cell's total count, and
  # logcounts its log-normalisation, sparse where the counts are zero.
  expect_identical(SummarizedExperiment::colData(sce)$library_size, unname(Matrix::colSums(counts)))
  expect_s4_class(logcounts_of(sce), "dgCMatrix")
  expect_s4_class(counts, "dgCMatrix")
  expect_identical(logcounts_of(sce)@i, counts@i)
  expect_equal(logcounts, as.matrix(log1p(t(t(as.matrix(counts)) / pmax(Matrix::colSums(counts), 1)) * 1e4)))
}

test_that("one level generates n cells of that level", {
  model <- tiny_model()
  sce <- generate_cells(model, n = 10, condition = "B", steps = 10)
  expect_generated_cells(sce, model, 10)
  cell_type <- SummarizedExperiment::colData(sce)$cell_type
  expect_s3_class(cell_type, "factor")
  expect_identical(levels(cell_type), model$levels)
  expect_true(all(cell_type == "B"))
  expect_identical(S4Vectors::metadata(sce)$exprflow$steps, 10)
})

test_that("one level without n generates one cell", {
  sce <- generate_cells(tiny_model(), condition = "NK", steps = 5)
  expect_identical(ncol(sce), 1L)
  expect_identical(as.character(sce$cell_type), "NK")
})

test_that("named counts per level generate those numbers of cells", {
  model <- tiny_model()
  sce <- generate_cells(model, condition = c(B = 3, NK = 2), steps = 10)
  expect_generated_cells(sce, model, 5)
  expect_identical(as.character(sce$cell_type), c("B", "B", "B", "NK", "NK"))
  expect_equal(as.vector(table(sce$cell_type)[c("B", "NK")]), c(3, 2))
  expect_identical(ncol(generate_cells(model, n = 5, condition = c(B = 3, NK = 2), steps = 5)), 5L)
  expect_identical(ncol(generate_cells(model, condition = c(B = 0, NK = 2), steps = 5)), 2L)
})

test_that("a vector of levels gives one cell per level, in order", {
  model <- tiny_model()
  wanted <- c("NK", "B", "DC", "NK", "Platelet", "CD8 T")
  sce <- generate_cells(model, condition = wanted, steps = 10)
  expect_generated_cells(sce, model, length(wanted))
  expect_identical(as.character(sce$cell_type), wanted)
  from_factor <- generate_cells(model, condition = factor(wanted), steps = 10)
  expect_identical(as.character(from_factor$cell_type), wanted)
  expect_identical(ncol(generate_cells(model, n = 6, condition = wanted, steps = 5)), 6L)
})

test_that("condition = NULL allots cells in proportion to the training cells", {
  model <- tiny_model()
  n <- 50
  sce <- generate_cells(model, n = n, steps = 10)
  expect_generated_cells(sce, model, n)
  got <- as.vector(table(factor(sce$cell_type, levels = model$levels)))
  expect_equal(sum(got), n)
  share <- n * model$level_counts / sum(model$level_counts)
  expect_true(all(abs(got - share) < 1))
  expect_identical(levels(sce$cell_type), model$levels)
})

test_that("the condition column is named after the training condition", {
  sce <- generate_cells(tiny_model(), n = 3, steps = 5)
  expect_true("cell_type" %in% names(SummarizedExperiment::colData(sce)))
  expect_false("condition" %in% names(SummarizedExperiment::colData(sce)))
})

test_that("an unconditional model generates cells without a condition column", {
  model <- tiny_unconditional_model()
  sce <- generate_cells(model, n = 7, steps = 10)
  expect_generated_cells(sce, model, 7)
  expect_identical(names(SummarizedExperiment::colData(sce)), "library_size")
})

test_that("the same seed gives identical cells; a different seed gives different cells", {
  model <- tiny_model()
  generate <- function(seed) generate_cells(model, n = 12, steps = 10, seed = seed)
  a <- generate(11)
  b <- generate(11)
  c <- generate(12)
  expect_identical(counts_of(a), counts_of(b))
  expect_identical(logcounts_of(a), logcounts_of(b))
  expect_identical(a$library_size, b$library_size)
  expect_false(identical(logcounts_of(a), logcounts_of(c)))
  expect_false(identical(counts_of(a), counts_of(c)))
})

test_that("cells do not depend on the sampling batch size", {
  model <- tiny_model()
  whole <- generate_cells(model, n = 12, steps = 10, seed = 4)
  batched <- generate_cells(model, n = 12, steps = 10, seed = 4, batch_size = 5)
  expect_equal(as.matrix(logcounts_of(batched)), as.matrix(logcounts_of(whole)), tolerance = 1e-5)
})

test_that("every sampler, DDIM eta and guidance produce valid cells", {
  model <- tiny_model()
  for (method in c("ddpm", "ddim", "euler", "heun")) {
    cells <- generate_cells(model, n = 5, method = method, steps = 10)
    expect_generated_cells(cells, model, 5)
    expect_identical(S4Vectors::metadata(cells)$exprflow$method, method)
  }
  # The default sampler is the objective's: DDIM for this DDPM model.
  expect_identical(S4Vectors::metadata(generate_cells(model, n = 2, steps = 5))$exprflow$method, "ddim")
  expect_generated_cells(generate_cells(model, n = 5, eta = 1, steps = 10), model, 5)
  guided <- generate_cells(model, condition = c(NK = 4), guidance_scale = 2, steps = 10)
  expect_generated_cells(guided, model, 4)
  expect_identical(S4Vectors::metadata(guided)$exprflow$guidance_scale, 2)
})

# --- bad arguments ------------------------------------------------------------

test_that("an unseen condition level is rejected, listing the known ones", {
  model <- tiny_model()
  expect_error(generate_cells(model, n = 3, condition = "Neuron", steps = 5),
               "unknown condition level\\(s\\) 'Neuron'; the model knows: 'B'")
  expect_error(generate_cells(model, condition = c(B = 2, Neuron = 1), steps = 5), "'Neuron'")
  expect_error(generate_cells(model, condition = c("B", "Neuron"), steps = 5), "'Neuron'")
  # Counts per level belong in `condition`; names on `n` are not dropped silently.
  expect_error(generate_cells(model, n = c(B = 3), steps = 5),
               "`n` is one number of cells, without names.*condition = c\\(B = 3\\)")
  # Cells given where the number goes: one short message naming the class.
  message <- tryCatch(generate_cells(model, pbmc_sce()[, 1:5], steps = 5), error = conditionMessage)
  expect_match(message, "`n` must be one number of cells; got an object of class 'SingleCellExperiment'")
  expect_lt(nchar(message), 200)
})

test_that("an unconditional model given a condition is an error", {
  model <- tiny_unconditional_model()
  expect_error(generate_cells(model, n = 3, condition = "B", steps = 5),
               "the model is unconditional: leave `condition` NULL")
  expect_error(generate_cells(model, steps = 5), "`n` \\(the number of cells\\) is required")
})

test_that("inconsistent n and condition are rejected", {
  model <- tiny_model()
  expect_error(generate_cells(model, steps = 5), "give `n` and/or `condition`")
  expect_error(generate_cells(model, n = 4, condition = c(B = 3, NK = 2)), "differs from sum")
  expect_error(generate_cells(model, n = 4, condition = c("B", "NK", "DC")), "differs from the number")
  expect_error(generate_cells(model, condition = c(B = -1, NK = 2)), "whole numbers >= 0")
  expect_error(generate_cells(model, condition = c(B = 1.5)), "whole numbers >= 0")
  expect_error(generate_cells(model, condition = c(B = 0)), "zero cells")
  expect_error(generate_cells(model, condition = c("B", NA)), "must not be empty or NA")
  expect_error(generate_cells(model, condition = character()), "must not be empty or NA")
  expect_error(generate_cells(model, n = 0, condition = "B"), "`n` must be a single whole number >= 1")
  expect_error(generate_cells(model, n = 3e9, condition = "B"), "`n` must be at most 2147483647")
})

test_that("sampling arguments are checked", {
  model <- tiny_model()
  expect_error(generate_cells(model, n = 2, steps = 0), "`steps`")
  expect_error(generate_cells(model, n = 2, eta = 2), "`eta`")
  expect_error(generate_cells(model, n = 2, guidance_scale = -1), "`guidance_scale`")
  expect_error(generate_cells(model, n = 2, seed = -1), "`seed`")
  expect_error(generate_cells(model, n = 2, batch_size = 0), "`batch_size`")
  expect_error(generate_cells(model, n = 2, method = "rk4"), "should be one of")
  expect_error(generate_cells(list(), n = 2), "must be an exprflow_model")
})

test_that("steps beyond the training timesteps are rejected", {
  expect_error(generate_cells(tiny_model(), n = 2, steps = 5000), "between 1 and the training timesteps")
})

test_that("an explicit seed leaves the user's R random number stream alone", {
  set.seed(99)
  expected <- stats::runif(3)
  set.seed(99)
  generate_cells(tiny_model(), n = 3, steps = 3, seed = 5)
  expect_identical(stats::runif(3), expected)
})

test_that("seed = NULL follows R's random number generator", {
  model <- tiny_model()
  set.seed(7)
  a <- generate_cells(model, n = 6, steps = 3)
  b <- generate_cells(model, n = 6, steps = 3)
  set.seed(7)
  again <- generate_cells(model, n = 6, steps = 3)
  expect_identical(counts_of(a), counts_of(again))
  expect_identical(colnames(a), colnames(again))
  expect_false(identical(counts_of(a), counts_of(b)))
  # Cells of two calls can be combined: their names differ.
  expect_length(intersect(colnames(a), colnames(b)), 0)
  # The seed drawn is recorded, and reproduces the cells.
  seed <- S4Vectors::metadata(a)$exprflow$seed
  expect_identical(counts_of(generate_cells(model, n = 6, steps = 3, seed = seed)), counts_of(a))
})

test_that("misspelled or unknown arguments are errors, not ignored", {
  model <- tiny_model()
  expect_error(generate_cells(model, n = 2, guidence_scale = 3), "unknown argument: `guidence_scale`")
  expect_error(generate_cells(model, n = 2, nme = "X", stps = 2), "unknown arguments: `nme`, `stps`")
  expect_error(embed_cells(model, small_counts(2000, 5), nme = "X"), "embed_cells\\(\\) got unknown argument: `nme`")
  nb <- fit_baseline(pbmc_sce()[, 1:200], "independent_nb")
  expect_error(generate_cells(nb, n = 2, sed = 1), "unknown argument: `sed`")
  pca <- fit_baseline(pbmc_sce()[, 1:200], "pca_gaussian", n_pcs = 3)
  expect_error(embed_cells(pca, small_counts(2000, 5), nme = "X"), "unknown argument: `nme`")
})

test_that("a model conditioned on an integer column takes its values as levels", {
  model <- fit_tiny(pbmc_sce()[, 1:300], condition = "seurat_cluster", validation_fraction = 0)
  expect_identical(model$levels, as.character(0:8))
  sce <- generate_cells(model, condition = c(`0` = 2, `3` = 1), steps = 3)
  expect_identical(as.character(sce$seurat_cluster), c("0", "0", "3"))
  expect_identical(as.character(generate_cells(model, n = 2, condition = 0, steps = 3)$seurat_cluster),
                   c("0", "0"))
})

test_that("a condition column named library_size keeps its levels in generated cells", {
  sce <- pbmc_sce()[1:60, 1:80]
  sce$library_size <- sce$cell_type
  model <- fit_tiny(sce, condition = "library_size")
  cells <- generate_cells(model, condition = c(B = 2, NK = 1), steps = 5)
  expect_equal(as.character(cells$library_size), c("B", "B", "NK"))
  expect_true(all(cells$exprflow_library_size > 0))
})

test_that("a flow model samples with every method and defaults to Euler", {
  model <- tiny_flow_model()
  expect_identical(model$spec$objective, "flow")
  cells <- generate_cells(model, condition = c(B = 3, NK = 2), steps = 8)
  expect_generated_cells(cells, model, 5)
  expect_identical(S4Vectors::metadata(cells)$exprflow$method, "euler")
  for (method in c("heun", "ddim", "ddpm")) {
    expect_generated_cells(generate_cells(model, n = 4, method = method, steps = 8), model, 4)
  }
  # Flow time is continuous: any number of steps.
  expect_generated_cells(generate_cells(model, n = 2, steps = 5000), model, 2)
})

# A sampling choice of generate_cells() (library_size, gene_calibration):
# leaving it unset gives the cells of its default method, another method
# other cells, and the cells record the method used, not "default".
expect_sampling_choice <- function(model, argument, default_method, other_method) {
  draw <- function(...) generate_cells(model, n = 40, condition = "B", steps = 5, seed = 3, ...)
  default <- draw()
  named <- do.call(draw, stats::setNames(list(default_method), argument))
  other <- do.call(draw, stats::setNames(list(other_method), argument))
  expect_identical(counts_of(default), counts_of(named))
  expect_false(identical(counts_of(default), counts_of(other)))
  expect_identical(S4Vectors::metadata(default)$exprflow[[argument]], default_method)
  expect_identical(S4Vectors::metadata(other)$exprflow[[argument]], other_method)
  list(default = default, other = other)
}

test_that("library_size: matched by default for gene-space models, chosen or refused by name", {
  model <- tiny_model()
  default <- expect_sampling_choice(model, "library_size", "matched", "empirical")$default
  # Matched sizes are training cells' sizes of the level, as empirical ones are.
  sce <- pbmc_sce()
  b_sizes <- Matrix::colSums(SingleCellExperiment::counts(sce)[, sce$cell_type == "B"])
  expect_true(all(default$library_size <= max(b_sizes) + 100))  # + stochastic rounding
  expect_error(generate_cells(model, n = 2, library_size = "gamma"), "`library_size` must be NULL or one of")
  expect_error(generate_cells(model, n = 2, library_size = c("matched", "empirical")), "`library_size`")
})

test_that("gene_calibration: on by default for gene-space models, off by name, recorded", {
  model <- tiny_model()
  cells <- expect_sampling_choice(model, "gene_calibration", "mean", "none")
  # The same library sizes: only the genes' shares of them move.
  expect_equal(cells$default$library_size, cells$other$library_size, tolerance = 0.05)
  expect_error(generate_cells(model, n = 2, gene_calibration = "quantile"), "`gene_calibration` must be NULL")
  expect_error(generate_cells(model, n = 2, gene_calibration = TRUE), "`gene_calibration`")
})
