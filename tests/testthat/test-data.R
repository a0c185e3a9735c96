# R/data.R: inputs -> C++ expression source, minibatches, input checks.

# The same counts in every supported input type.
input_variants <- function(counts) {
  variants <- list(
    dgCMatrix = counts,
    dense = as.matrix(counts),
    dgTMatrix = methods::as(counts, "TsparseMatrix"),
    SingleCellExperiment = SingleCellExperiment::SingleCellExperiment(assays = list(counts = counts))
  )
  if (requireNamespace("SeuratObject", quietly = TRUE)) {
    variants$Seurat <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = counts))
  }
  variants
}

# log1p(count / library size * 1e4), computed in R (double precision).
reference_lognorm <- function(counts, cells) {
  dense <- as.matrix(counts)
  library_size <- colSums(dense)
  log1p(sweep(dense[, cells, drop = FALSE], 2, library_size[cells], "/") * 1e4)
}

test_that("the test inputs are really of the intended classes", {
  variants <- input_variants(small_counts(200, 40))
  expect_s4_class(variants$dgCMatrix, "dgCMatrix")
  expect_true(is.matrix(variants$dense))
  expect_s4_class(variants$dgTMatrix, "dgTMatrix")
  expect_s4_class(variants$SingleCellExperiment, "SingleCellExperiment")
  if (!is.null(variants$Seurat)) expect_s4_class(variants$Seurat, "Seurat")
})

test_that("every input type gives identical raw minibatches, equal to the counts", {
  counts <- small_counts(200, 40)
  cells <- c(5L, 1L, 17L, 40L, 2L)
  expected <- as.matrix(counts)[, cells]
  variants <- input_variants(counts)
  for (type in names(variants)) {
    out <- expression_minibatch(variants[[type]], cells, log_normalised = FALSE)
    expect_true(is.matrix(out), label = type)
    expect_identical(dim(out), c(200L, 5L), label = type)
    expect_identical(rownames(out), rownames(counts), label = type)
    expect_identical(colnames(out), colnames(counts)[cells], label = type)
    expect_equal(unname(out), unname(expected), label = type)
  }
})

test_that("every input type gives identical log-normalised minibatches", {
  counts <- small_counts(200, 40)
  cells <- c(3L, 40L, 1L, 22L)
  variants <- input_variants(counts)
  reference <- expression_minibatch(variants$dgCMatrix, cells)
  for (type in setdiff(names(variants), "dgCMatrix")) {
    expect_identical(expression_minibatch(variants[[type]], cells), reference, label = type)
    expect_identical(expression_minibatch(variants[[type]], cells, log_normalised = FALSE),
                     expression_minibatch(variants$dgCMatrix, cells, log_normalised = FALSE),
                     label = type)
  }
})

test_that("Seurat input gives the same minibatches as the matrix", {
  skip_if_not_installed("SeuratObject")
  counts <- small_counts(100, 25)
  seurat <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = counts))
  expect_identical(expression_minibatch(seurat, 1:25), expression_minibatch(counts, 1:25))
  expect_identical(expression_minibatch(seurat, 1:25, log_normalised = FALSE),
                   expression_minibatch(counts, 1:25, log_normalised = FALSE))
})

test_that("Seurat input reads `assay`, by default its DefaultAssay()", {
  skip_if_not_installed("SeuratObject")
  counts <- small_counts(100, 25)
  other <- counts
  other@x <- other@x + 1
  seurat <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = counts))
  seurat[["ALT"]] <- suppressWarnings(SeuratObject::CreateAssayObject(counts = other))
  SeuratObject::DefaultAssay(seurat) <- "ALT"
  raw <- function(...) expression_minibatch(seurat, 1:25, log_normalised = FALSE, ...)
  expect_identical(raw(), expression_minibatch(other, 1:25, log_normalised = FALSE))
  expect_identical(raw(assay = "RNA"), expression_minibatch(counts, 1:25, log_normalised = FALSE))
  expect_error(raw(assay = "counts"), "`assay`: 'counts' is not an assay of the Seurat object.*ALT")
  # A SingleCellExperiment's `assay` names an assay of counts, "counts" by default.
  sce <- SingleCellExperiment::SingleCellExperiment(list(counts = counts, raw = other))
  expect_identical(expression_minibatch(sce, 1:3, assay = "raw"), expression_minibatch(other, 1:3))
  expect_error(expression_minibatch(sce, 1:3, assay = "RNA"), "`assay`: 'RNA' is not an assay of `x`")
})

test_that("log-normalised values equal log1p(count / colSums * 1e4) computed in R", {
  counts <- small_counts(300, 50)
  cells <- seq_len(50)
  out <- expression_minibatch(counts, cells)
  reference <- reference_lognorm(counts, cells)
  expect_lt(max_relative_difference(out, reference), 1e-5)
  expect_equal(unname(out), unname(reference), tolerance = 1e-5)
  expect_true(all(out[as.matrix(counts) == 0] == 0))
})

test_that("log-normalisation uses the library size over all genes of the input (full data)", {
  counts <- pbmc_counts()
  cells <- c(1L, 600L, 1200L)
  out <- expression_minibatch(pbmc_sce(), cells)
  expect_identical(dim(out), c(2000L, 3L))
  expect_lt(max_relative_difference(out, reference_lognorm(counts, cells)), 1e-5)
})

test_that("a cell with zero counts gives zeros, not NaN", {
  counts <- as.matrix(small_counts(50, 10))
  counts[, 4] <- 0
  out <- expression_minibatch(counts, 1:10)
  expect_false(anyNA(out))
  expect_true(all(out[, 4] == 0))
})

test_that("integer matrices are accepted like doubles; logical ones are not counts", {
  counts <- as.matrix(small_counts(50, 10))
  integer_counts <- counts
  storage.mode(integer_counts) <- "integer"
  expect_identical(expression_minibatch(integer_counts, 1:10), expression_minibatch(counts, 1:10))
  expect_error(expression_minibatch(counts > 0, 1:3), "logical \\(TRUE / FALSE\\) values, not counts")
})

test_that("the SingleCellExperiment assay argument selects the assay", {
  counts <- small_counts(50, 10)
  sce <- SingleCellExperiment::SingleCellExperiment(
    assays = list(counts = counts * 0, raw = counts))
  expect_identical(expression_minibatch(sce, 1:10, assay = "raw"), expression_minibatch(counts, 1:10))
})

# --- bad inputs ---------------------------------------------------------------

test_that("negative counts are rejected, dense and sparse", {
  dense <- as.matrix(small_counts(40, 10))
  dense[3, 2] <- -1
  expect_error(expression_minibatch(dense, 1), "non-negative")
  sparse <- small_counts(40, 10)
  sparse[3, 2] <- -2
  expect_error(expression_minibatch(sparse, 1), "non-negative")
  expect_error(fit_tiny(dense), "non-negative")
})

test_that("NA, NaN and Inf counts are rejected, dense and sparse", {
  for (bad in list(NA_real_, NaN, Inf, -Inf)) {
    dense <- as.matrix(small_counts(40, 10))
    dense[5, 7] <- bad
    expect_error(expression_minibatch(dense, 1), "finite|non-negative|NA", label = format(bad))
    sparse <- small_counts(40, 10)
    sparse[5, 7] <- bad
    expect_error(expression_minibatch(sparse, 1), "finite|non-negative|NA", label = format(bad))
  }
  dense <- as.matrix(small_counts(40, 10))
  dense[5, 7] <- NA
  expect_error(expression_minibatch(dense, 1), "finite")
  expect_error(fit_tiny(dense), "finite")
})

test_that("missing gene names are rejected", {
  counts <- as.matrix(small_counts(40, 10))
  rownames(counts) <- NULL
  expect_error(expression_minibatch(counts, 1), "no gene names.*rownames")
  expect_error(fit_tiny(counts), "no gene names")
  named <- as.matrix(small_counts(40, 10))
  rownames(named)[4] <- NA
  expect_error(expression_minibatch(named, 1), "missing or empty gene names")
  rownames(named)[4] <- ""
  expect_error(expression_minibatch(named, 1), "missing or empty gene names")
})

test_that("duplicated gene names are rejected and named", {
  counts <- small_counts(40, 10)
  rownames(counts)[2] <- rownames(counts)[1]
  expect_error(expression_minibatch(counts, 1), "duplicated gene names.*ISG15.*make.unique")
  expect_error(fit_tiny(counts), "duplicated gene names")
})

test_that("zero cells are rejected", {
  counts <- small_counts(40, 10)
  expect_error(expression_minibatch(counts[, 0], 1), "zero cells")
  expect_error(expression_minibatch(as.matrix(counts)[, 0, drop = FALSE], 1), "zero cells")
  expect_error(fit_tiny(counts[, 0]), "zero cells")
})

test_that("non-integer (normalised) counts are rejected", {
  counts <- small_counts(40, 10)
  expect_error(expression_minibatch(counts * 0.5 + 0.25, 1), "non-integer values.*raw counts")
  expect_error(expression_minibatch(log1p(as.matrix(counts)), 1), "non-integer values")
  sce <- pbmc_sce()[1:100, 1:50]
  SummarizedExperiment::assay(sce, "logcounts") <- log1p(SummarizedExperiment::assay(sce, "counts"))
  expect_error(fit_tiny(sce, assay = "logcounts"), "non-integer values")
  # Missing values are named as such, for sparse and dense counts alike.
  holes <- counts
  holes[3, 4] <- NA
  holes[5, 6] <- Inf
  expect_error(expression_minibatch(holes, 1), "`x` holds 2 missing or infinite values")
  expect_error(expression_minibatch(as.matrix(holes), 1), "`x` holds 2 missing or infinite values")
})

test_that("unsupported input classes are rejected with their class", {
  counts <- as.data.frame(as.matrix(small_counts(40, 10)))
  expect_error(expression_minibatch(counts, 1), "got an object of class 'data.frame'")
  expect_error(fit_tiny(counts), "must be a SingleCellExperiment.*'data.frame'")
  expect_error(expression_minibatch(list(1, 2), 1), "class 'list'")
  expect_error(expression_minibatch(matrix(letters[1:4], 2, dimnames = list(c("a", "b"), NULL)), 1),
               "must be numeric")
})

test_that("a missing assay name is rejected, listing the available assays", {
  sce <- pbmc_sce()[1:50, 1:20]
  expect_error(expression_minibatch(sce, 1, assay = "raw"), "`assay`: 'raw' is not an assay of `x`; its assays: 'counts'")
  expect_error(fit_tiny(sce, assay = "raw"), "`assay`: 'raw'")
  expect_error(expression_minibatch(sce, 1, assay = NA_character_), "`assay` must be a single")
})

test_that("cell indices are checked", {
  counts <- small_counts(40, 10)
  expect_error(expression_minibatch(counts, 0), "between 1 and 10")
  expect_error(expression_minibatch(counts, 11), "between 1 and 10")
  expect_error(expression_minibatch(counts, NA), "between 1 and 10")
  expect_error(expression_minibatch(counts, "a"), "between 1 and 10")
})

# --- condition ----------------------------------------------------------------

test_that("a condition column that does not exist is named, with the available columns", {
  sce <- pbmc_sce()[1:100, 1:60]
  expect_error(fit_tiny(sce, condition = "celltype"),
               "`condition` column 'celltype' does not exist; available columns: .*'cell_type'")
  expect_error(fit_tiny(sce, condition = "celltype"), "seurat_cluster")
})

test_that("a condition column given for matrix input (no covariates) is explained", {
  expect_error(fit_tiny(small_counts(40, 20), condition = "cell_type"),
               "names a column \\('cell_type'\\) but matrix input has no cell covariates")
})

test_that("NA in the condition is rejected", {
  sce <- pbmc_sce()[1:100, 1:60]
  sce$cell_type[c(3, 9)] <- NA
  expect_error(fit_tiny(sce, condition = "cell_type"), "2 missing \\(NA\\) values")
  values <- rep(c("a", "b"), 10)
  values[1] <- NA
  expect_error(fit_tiny(small_counts(40, 20), condition = values), "1 missing \\(NA\\) values")
})

test_that("a condition vector of the wrong length is rejected", {
  expect_error(fit_tiny(small_counts(40, 20), condition = c("a", "b", "a")),
               "`condition` has 3 values for 20 cells")
  expect_error(fit_tiny(pbmc_sce()[1:50, 1:30], condition = rep("a", 31)), "31 values for 30 cells")
})

test_that("a condition vector (one value per cell) works for matrix input", {
  model <- fit_tiny(small_counts(60, 40), condition = rep(c("x", "y"), 20), validation_fraction = 0)
  expect_identical(model$levels, c("x", "y"))
  expect_identical(model$condition, "condition")
  expect_equal(unname(model$level_counts), c(20, 20))
})

test_that("the condition of a Seurat object is read from its meta.data", {
  skip_if_not_installed("SeuratObject")
  sce <- pbmc_sce()[1:100, 1:80]
  seurat <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = SummarizedExperiment::assay(sce)))
  seurat$cell_type <- as.character(sce$cell_type)
  model <- fit_tiny(seurat, condition = "cell_type", validation_fraction = 0)
  expect_identical(model$condition, "cell_type")
  expect_identical(model$levels, sort(unique(as.character(sce$cell_type))))
  expect_error(fit_tiny(seurat, condition = "celltype"), "available columns: .*'orig.ident'")
})
