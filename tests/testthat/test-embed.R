# R/embed.R: embed_cells().

embedding_sce <- function() pbmc_sce()[, 1:60]

test_that("SingleCellExperiment input gets reducedDim EXPRFLOW of cells x token_dim", {
  model <- tiny_model()
  sce <- embedding_sce()
  out <- embed_cells(model, sce)
  expect_s4_class(out, "SingleCellExperiment")
  expect_true("EXPRFLOW" %in% SingleCellExperiment::reducedDimNames(out))
  embedding <- SingleCellExperiment::reducedDim(out, "EXPRFLOW")
  expect_identical(dim(embedding), c(60L, as.integer(model$spec$token_dim)))
  expect_identical(rownames(embedding), colnames(sce))
  expect_identical(colnames(embedding), paste0("EXPRFLOW_", 1:16))
  expect_true(all(is.finite(embedding)))
  # the rest of the object is untouched
  expect_identical(SummarizedExperiment::assay(out, "counts"), SummarizedExperiment::assay(sce, "counts"))
  expect_identical(SummarizedExperiment::colData(out), SummarizedExperiment::colData(sce))
})

test_that("the name argument names the reduced dimension", {
  out <- embed_cells(tiny_model(), embedding_sce(), name = "latent")
  expect_true("latent" %in% SingleCellExperiment::reducedDimNames(out))
  expect_identical(colnames(SingleCellExperiment::reducedDim(out, "latent"))[1], "latent_1")
  expect_error(embed_cells(tiny_model(), embedding_sce(), name = ""), "`name` must be a single")
})

test_that("matrix input returns the same embedding as a matrix", {
  model <- tiny_model()
  sce <- embedding_sce()
  reference <- SingleCellExperiment::reducedDim(embed_cells(model, sce), "EXPRFLOW")
  counts <- SummarizedExperiment::assay(sce, "counts")
  from_sparse <- embed_cells(model, counts)
  expect_true(is.matrix(from_sparse))
  expect_identical(from_sparse, reference)
  expect_identical(embed_cells(model, as.matrix(counts)), reference)
})

test_that("embeddings are deterministic and do not depend on the other cells", {
  model <- tiny_model()
  counts <- SummarizedExperiment::assay(embedding_sce(), "counts")
  all_cells <- embed_cells(model, counts)
  expect_identical(embed_cells(model, counts), all_cells)
  some <- embed_cells(model, counts[, c(10, 3, 50)])
  expect_equal(some, all_cells[c(10, 3, 50), ], tolerance = 1e-5)
})

test_that("genes in another order, or a superset of genes, give the same embedding", {
  model <- tiny_model()
  counts <- SummarizedExperiment::assay(embedding_sce(), "counts")
  reference <- embed_cells(model, counts)
  shuffled <- counts[rev(seq_len(nrow(counts))), ]
  expect_identical(embed_cells(model, shuffled), reference)
  extra <- counts[1:25, ]
  rownames(extra) <- paste0("EXTRA-", seq_len(25))
  superset <- rbind(extra, counts)[withr::with_seed(1, sample.int(2025)), ]  # shuffled too
  expect_identical(embed_cells(model, superset), reference)
  sce <- SingleCellExperiment::SingleCellExperiment(assays = list(counts = superset))
  expect_identical(unname(SingleCellExperiment::reducedDim(embed_cells(model, sce))), unname(reference))
})

test_that("a missing model gene is an error naming it", {
  model <- tiny_model()
  counts <- SummarizedExperiment::assay(embedding_sce(), "counts")
  expect_error(embed_cells(model, counts[-2, ]), "lacks 1 of the model's 2000 genes \\('SDF4'\\)")
  renamed <- counts
  rownames(renamed) <- toupper(paste0(rownames(renamed), "x"))
  expect_error(embed_cells(model, renamed), "lacks 2000 of the model's 2000 genes")
})

test_that("bad inputs to embed_cells are rejected", {
  model <- tiny_model()
  counts <- SummarizedExperiment::assay(embedding_sce(), "counts")
  unnamed <- counts
  rownames(unnamed) <- NULL
  expect_error(embed_cells(model, unnamed), "no gene names")
  duplicated <- counts
  rownames(duplicated)[2] <- rownames(duplicated)[1]
  expect_error(embed_cells(model, duplicated), "duplicated gene names")
  expect_error(embed_cells(model, as.data.frame(as.matrix(counts))), "'data.frame'")
  expect_error(embed_cells(model, embedding_sce(), assay = "raw"), "`assay`: 'raw'")
  expect_error(embed_cells("model", counts), "must be an exprflow_model")
})

test_that("Seurat input gets a DimReduc", {
  skip_if_not_installed("SeuratObject")
  model <- tiny_model()
  counts <- SummarizedExperiment::assay(embedding_sce(), "counts")
  seurat <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = counts))
  out <- embed_cells(model, seurat)
  expect_s4_class(out, "Seurat")
  expect_true("exprflow" %in% SeuratObject::Reductions(out))
  reduction <- out[["exprflow"]]
  expect_s4_class(reduction, "DimReduc")
  embedding <- SeuratObject::Embeddings(reduction)
  expect_identical(dim(embedding), c(60L, 16L))
  expect_identical(rownames(embedding), colnames(counts))
  expect_equal(unname(embedding), unname(embed_cells(model, counts)))
})
