# R/example_data.R: example_pbmc().

test_that("example_pbmc() is a 2000 x 1200 SingleCellExperiment of integer counts", {
  sce <- example_pbmc()
  expect_s4_class(sce, "SingleCellExperiment")
  expect_identical(dim(sce), c(2000L, 1200L))
  expect_identical(SummarizedExperiment::assayNames(sce), "counts")
  counts <- SummarizedExperiment::assay(sce, "counts")
  expect_s4_class(counts, "dgCMatrix")
  expect_true(all_whole(counts))
  expect_true(all(counts@x >= 0))
  expect_false(anyDuplicated(rownames(sce)) > 0)
  expect_false(anyDuplicated(colnames(sce)) > 0)
  expect_true(all(Matrix::colSums(counts) > 0))
})

test_that("example_pbmc() has a cell_type factor with 9 sorted levels and the other covariates", {
  sce <- example_pbmc()
  cell_type <- sce$cell_type
  expect_s3_class(cell_type, "factor")
  expect_length(levels(cell_type), 9)
  expect_identical(levels(cell_type), sort(levels(cell_type)))
  expect_false(anyNA(cell_type))
  expect_true(all(table(cell_type) > 0))
  expect_true(all(c("cell_type", "seurat_cluster", "nCount_RNA_full") %in% names(SummarizedExperiment::colData(sce))))
  expect_identical(rownames(SummarizedExperiment::colData(sce)), colnames(sce))
  expect_true(all(sce$nCount_RNA_full >= Matrix::colSums(SummarizedExperiment::assay(sce))))
})

test_that("example_pbmc(as = 'matrix') returns the same counts and cell types", {
  x <- example_pbmc(as = "matrix")
  sce <- example_pbmc()
  expect_type(x, "list")
  expect_named(x, c("counts", "cell_type"))
  expect_s4_class(x$counts, "dgCMatrix")
  expect_identical(dim(x$counts), c(2000L, 1200L))
  expect_identical(x$counts, SummarizedExperiment::assay(sce, "counts"))
  expect_identical(x$cell_type, sce$cell_type)
  # the returned dgCMatrix works without attaching Matrix
  expect_identical(dim(x$counts[1:5, 1:3]), c(5L, 3L))
})

test_that("example_pbmc() rejects an unknown return type", {
  expect_error(example_pbmc(as = "data.frame"), "should be one of")
})
