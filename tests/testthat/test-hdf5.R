# Models trained from .h5ad / 10x .h5 paths (streamed by the core), cells
# written with write_h5ad(), and files exchanged with Python's anndata.

small_cells <- function(n = 200) {
  sce <- example_pbmc()[, seq_len(n)]
  sce$depth <- as.numeric(Matrix::colSums(SummarizedExperiment::assay(sce, "counts")))
  sce$doublet <- rep(c(TRUE, FALSE), length.out = n)
  sce
}

# What `code` (R lines that read the file a[1] and save an object to a[2])
# saves, run in a fresh R process; NULL when it fails. HDF5Array 1.26
# (Debian 12) takes rhdf5 2.42's failed H5Dopen() for a dataset, so only the
# first sparse group of a session opens, and none after a failed one; the
# objects hold no open handle, so they travel.
from_fresh_r <- function(code, path) {
  saved <- tempfile(fileext = ".rds")
  on.exit(unlink(saved))
  status <- system2(file.path(R.home("bin"), "Rscript"),
                    c("-e", shQuote(paste(c("a <- commandArgs(TRUE)", code), collapse = "\n")), path, saved),
                    stdout = FALSE, stderr = FALSE, env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")))
  if (status != 0L) NULL else readRDS(saved)
}

# A Python that imports anndata: Debian's (python3-anndata) before any other
# python3 on the PATH; "" when there is none.
anndata_python <- function() {
  for (python in unique(c("/usr/bin/python3", Sys.which("python3")))) {
    if (nzchar(python) && file.exists(python) &&
        system2(python, c("-c", shQuote("import anndata")), stdout = FALSE, stderr = FALSE) == 0) {
      return(python)
    }
  }
  ""
}

test_that("write_h5ad() writes counts and covariates that the streamed source reads back exactly", {
  sce <- small_cells()
  path <- tempfile(fileext = ".h5ad")
  on.exit(unlink(path))
  expect_identical(write_h5ad(sce, path, block_size = 64), path)
  expect_identical(expression_minibatch(path, c(200, 1, 7, 7, 50), log_normalised = FALSE),
                   expression_minibatch(sce, c(200, 1, 7, 7, 50), log_normalised = FALSE))
  expect_identical(expression_minibatch(path, 1:200), expression_minibatch(sce, 1:200))
  input <- exprflow:::.expression_input(path, condition = "cell_type")
  expect_identical(input$cells, colnames(sce))
  expect_identical(input$file$format, "h5ad_csr")
  expect_identical(as.character(input$covariates$cell_type), as.character(sce$cell_type))
  expect_identical(input$covariates$depth, sce$depth)
  expect_identical(input$covariates$doublet, factor(sce$doublet))
  expect_identical(levels(input$condition), levels(droplevels(factor(sce$cell_type))))
})

test_that("models train, embed and reconstruct from a file path", {
  sce <- small_cells()
  path <- tempfile(fileext = ".h5ad")
  on.exit(unlink(path))
  write_h5ad(sce, path)
  model <- fit_expression_model(path, "state_mlp", condition = "cell_type", epochs = 2, hidden = 32, n_layers = 1,
                                verbose = FALSE)
  expect_identical(model$condition, "cell_type")
  expect_identical(model$genes, rownames(sce))
  expect_equal(nrow(model$history), 2L)
  # Embeddings do not depend on how the cells arrive.
  expect_equal(embed_cells(model, path), embed_cells(model, SummarizedExperiment::assay(sce, "counts")))
  other <- small_cells()[1:50, ]
  other_path <- tempfile(fileext = ".h5ad")
  on.exit(unlink(other_path), add = TRUE)
  write_h5ad(other, other_path)
  expect_error(embed_cells(model, other_path), "`x`: '.*' lacks 1950 of the 2000 genes asked for \\(")
  # A file with more genes, in another order: the model's genes are read
  # from it, with library sizes over them as for the matrix subset.
  counts <- SummarizedExperiment::assay(sce, "counts")
  extra <- Matrix::sparseMatrix(i = rep(1L, ncol(counts)), j = seq_len(ncol(counts)), x = 5, dims = c(3L, ncol(counts)),
                                dimnames = list(c("X1", "X2", "X3"), colnames(counts)))
  shuffled <- rbind(counts, extra)[c(2003:1), ]
  shuffled_path <- tempfile(fileext = ".h5ad")
  on.exit(unlink(shuffled_path), add = TRUE)
  write_h5ad(shuffled, shuffled_path)
  expect_equal(embed_cells(model, shuffled_path), embed_cells(model, counts))
  # Reconstruction and transfer read the cells' own condition from the file,
  # as from the object written to it.
  from_file <- reconstruct_cells(model, path, steps = 2, seed = 1)
  from_object <- reconstruct_cells(model, sce, steps = 2, seed = 1)
  expect_equal(as.matrix(SingleCellExperiment::counts(from_file)), as.matrix(counts))
  expect_equal(SummarizedExperiment::assay(from_file, "reconstructed"),
               SummarizedExperiment::assay(from_object, "reconstructed"), tolerance = 1e-5)
  expect_identical(from_file$cell_type, from_object$cell_type)
  moved <- transfer_cells(model, path, to = "B", steps = 2, seed = 1)
  expect_identical(as.character(moved$transferred_from), as.character(sce$cell_type))
  expect_equal(SingleCellExperiment::counts(moved),
               SingleCellExperiment::counts(transfer_cells(model, sce, to = "B", steps = 2, seed = 1)))
  expect_error(fit_expression_model(path, condition = "tissue", epochs = 1),
               "`condition` column 'tissue' does not exist; available columns: .*cell_type")
})

# `backed` (the cells of `sce` with counts in the HDF5 object `name` of
# `path`) is streamed from its file and trains, embeds and shards as `sce`.
expect_streamed_from <- function(backed, sce, path, name) {
  n <- ncol(sce)
  input <- exprflow:::.expression_input(backed, condition = "cell_type")
  # The source reads the file (the core's HDF5 source, which has no cell
  # names of its own), not a copy in memory.
  expect_identical(exprflow:::.cpp_hdf5_cell_names(input$source), character())
  expect_identical(input$genes, rownames(sce))
  expect_identical(input$cells, colnames(sce))
  expect_identical(expression_minibatch(backed, c(n, 1, 7, 7), log_normalised = FALSE),
                   expression_minibatch(sce, c(n, 1, 7, 7), log_normalised = FALSE))
  expect_identical(expression_minibatch(backed, seq_len(n)), expression_minibatch(sce, seq_len(n)))
  model <- fit_expression_model(backed, "state_mlp", condition = "cell_type", epochs = 1, hidden = 16,
                                n_layers = 1, seed = 3, verbose = FALSE)
  twin <- fit_expression_model(sce, "state_mlp", condition = "cell_type", epochs = 1, hidden = 16,
                               n_layers = 1, seed = 3, verbose = FALSE)
  expect_equal(SingleCellExperiment::reducedDim(embed_cells(model, backed), "EXPRFLOW"),
               SingleCellExperiment::reducedDim(embed_cells(twin, sce), "EXPRFLOW"))
  # A subset is a delayed operation: read into memory, with the same cells.
  expect_identical(expression_minibatch(backed[, 11:20], 1:10), expression_minibatch(sce[, 11:20], 1:10))
  expect_identical(exprflow:::.hdf5_backed_counts(SummarizedExperiment::assay(backed[, 11:20], "counts")), NULL)
  # Worker processes stream the same file (no copy is written for them).
  expect_identical(exprflow:::.job_data(backed, NULL, input, tempfile()),
                   list(path = normalizePath(path), name = name, genes = rownames(sce)))
}

test_that("a SingleCellExperiment whose counts are an HDF5Array is streamed from its file", {
  skip_if_not_installed("HDF5Array")
  sce <- small_cells(120)
  counts <- SummarizedExperiment::assay(sce, "counts")
  path <- tempfile(fileext = ".h5")
  on.exit(unlink(path))
  backed <- sce
  SummarizedExperiment::assay(backed, "counts", withDimnames = FALSE) <-
    HDF5Array::writeHDF5Array(counts, path, "counts", verbose = FALSE)
  expect_streamed_from(backed, sce, path, "/counts")
  # The HDF5Array alone, and an in-memory DelayedArray, as a matrix would be.
  on_disk <- SummarizedExperiment::assay(backed, "counts")
  model <- fit_expression_model(sce, "state_mlp", epochs = 1, hidden = 16, n_layers = 1, seed = 3, verbose = FALSE)
  expect_equal(embed_cells(model, on_disk), embed_cells(model, counts))
  expect_equal(embed_cells(model, DelayedArray::DelayedArray(as.matrix(counts))), embed_cells(model, counts))
  skip_if_not(exprflow:::.cpp_data_parallel_available(), "built without Gloo (libgloo-dev)")
  in_processes <- fit_expression_model(backed, "state_mlp", condition = "cell_type", epochs = 1, hidden = 16,
                                       n_layers = 1, seed = 3, verbose = FALSE, processes = 2)
  expect_true(all(is.finite(in_processes$history$validation_loss)))
})

test_that("a SingleCellExperiment whose counts are a TENxMatrix is streamed from its 10x file", {
  skip_if_not_installed("HDF5Array")
  skip_if_not_installed("rhdf5")
  sce <- small_cells(120)
  counts <- methods::as(SummarizedExperiment::assay(sce, "counts"), "CsparseMatrix")
  # A Cell Ranger 3 file: integer counts, one CSC column per cell, genes by
  # id and name (TENxMatrix() names the rows by id).
  path <- tempfile(fileext = ".h5")
  on.exit(unlink(path))
  rhdf5::h5createFile(path)
  rhdf5::h5createGroup(path, "matrix")
  rhdf5::h5createGroup(path, "matrix/features")
  write <- function(value, name) rhdf5::h5write(value, path, paste0("matrix/", name))
  write(as.integer(counts@x), "data")
  write(counts@i, "indices")
  write(counts@p, "indptr")
  write(dim(counts), "shape")
  write(colnames(counts), "barcodes")
  write(rownames(counts), "features/id")
  write(paste0("symbol_", seq_len(nrow(counts))), "features/name")
  rhdf5::h5closeAll()
  tenx <- from_fresh_r("saveRDS(HDF5Array::TENxMatrix(a[1], 'matrix'), a[2])", path)
  skip_if(is.null(tenx), "HDF5Array::TENxMatrix() could not open the 10x file")
  expect_identical(dimnames(tenx), dimnames(counts))
  backed <- sce
  SummarizedExperiment::assay(backed, "counts", withDimnames = FALSE) <- tenx
  expect_streamed_from(backed, sce, path, "/matrix")
})

# An H5ADMatrix of the .h5ad file `path`, or NULL where HDF5Array cannot
# open it. HDF5Array 1.26 (Debian 12) fails in H5ADMatrix() while reading the
# names of a sparse X's cells and genes; the object is then built, in another
# process, from X's group as H5ADMatrix() builds it (its class chosen by the
# group's layout). It has no dimnames: the SingleCellExperiment it goes into
# gives them.
open_h5ad_matrix <- function(path) {
  from_fresh_r("saveRDS(HDF5Array::H5ADMatrix(a[1]), a[2])", path) %||%
    from_fresh_r(c("group <- HDF5Array::H5SparseMatrixSeed(a[1], '/X')",
                   "layout <- if (methods::is(group, 'CSC_H5SparseMatrixSeed')) 'CSC_H5ADMatrixSeed' else 'CSR_H5ADMatrixSeed'",
                   "saveRDS(DelayedArray::DelayedArray(methods::new(layout, group)), a[2])"), path)
}

test_that("a SingleCellExperiment whose counts are a sparse H5ADMatrix is streamed from its .h5ad file", {
  skip_if_not_installed("HDF5Array")
  sce <- small_cells(120)
  counts <- SummarizedExperiment::assay(sce, "counts")
  path <- tempfile(fileext = ".h5ad")
  on.exit(unlink(path))
  write_h5ad(sce, path)  # X: CSR, one row per cell
  h5ad <- open_h5ad_matrix(path)
  skip_if(is.null(h5ad), "HDF5Array could not open the .h5ad file's sparse X")
  # Genes x cells, one indptr segment per cell: HDF5Array's CSC layout.
  expect_s4_class(DelayedArray::seed(h5ad), "CSC_H5ADMatrixSeed")
  expect_equal(unname(as.matrix(h5ad)), unname(as.matrix(counts)))
  backed <- sce
  SummarizedExperiment::assay(backed, "counts", withDimnames = FALSE) <- h5ad
  expect_streamed_from(backed, sce, path, "/X")
  # anndata's CSC X (one segment per gene, HDF5Array's CSR layout) streams
  # through the core's CSR copy, as a path does.
  python <- anndata_python()
  skip_if_not(nzchar(python), "python3 with anndata is not installed (Debian: python3-anndata)")
  csc <- tempfile(fileext = ".h5ad")
  on.exit(unlink(csc), add = TRUE)
  code <- "import sys, anndata, scipy.sparse as sp; a = anndata.read_h5ad(sys.argv[1]); a.X = sp.csc_matrix(a.X); a.write_h5ad(sys.argv[2])"
  expect_identical(system2(python, c("-c", shQuote(code), path, csc), stdout = FALSE, stderr = FALSE), 0L)
  h5ad_csc <- open_h5ad_matrix(csc)
  skip_if(is.null(h5ad_csc), "HDF5Array could not open the .h5ad file's sparse X")
  expect_s4_class(DelayedArray::seed(h5ad_csc), "CSR_H5ADMatrixSeed")
  SummarizedExperiment::assay(backed, "counts", withDimnames = FALSE) <- h5ad_csc
  expect_streamed_from(backed, sce, csc, "/X")
})

test_that("bad paths and files give errors naming the file and the field", {
  expect_error(fit_expression_model(file.path(tempdir(), "absent.h5ad")), "file '.*absent.h5ad' does not exist")
  expect_error(fit_expression_model(tempdir()), "is a folder, not an .h5 / .h5ad file")
  text <- tempfile(fileext = ".h5ad")
  on.exit(unlink(text))
  writeLines("not hdf5", text)
  expect_error(fit_expression_model(text), "is not an HDF5 file")
  # Normalised values in X: the error says to name the layer of counts.
  sce <- small_cells(20)
  SummarizedExperiment::assay(sce, "logcounts") <- log1p(SummarizedExperiment::assay(sce, "counts") / 3)
  write_h5ad(sce, text, assay = "logcounts")
  expect_error(fit_expression_model(text, epochs = 1), "X holds .* at cell 1, gene .*raw counts.*`assay`")
  expect_error(fit_expression_model(text, assay = "counts", epochs = 1), "has no layer 'counts'")
  expect_error(write_h5ad(sce, file.path(tempdir(), "no", "such", "x.h5ad")), "folder '.*' does not exist")
  sce$bad <- I(as.list(seq_len(20)))
  expect_error(write_h5ad(sce, text), "colData column 'bad' is a AsIs")
})

test_that("an anndata file whose var and obs indexes have names is read", {
  # anndata keeps such an index under its own name (/var/gene_ids), named by
  # the group's _index attribute: a UTF-8 string the reader once could not
  # convert before it had read another string, so it looked for /var/_index.
  python <- anndata_python()
  skip_if_not(nzchar(python), "python3 with anndata is not installed (Debian: python3-anndata)")
  path <- tempfile(fileext = ".h5ad")
  on.exit(unlink(path))
  code <- paste(
    "import sys, anndata, numpy as np, pandas as pd, scipy.sparse as sp",
    "x = sp.csr_matrix(np.arange(1, 55, dtype=np.float32).reshape(9, 6))",
    "var = pd.DataFrame(index=pd.Index(['g%d' % j for j in range(6)], name='gene_ids'))",
    "obs = pd.DataFrame({'group': pd.Categorical(list('abc') * 3)}, index=pd.Index(['c%d' % i for i in range(9)], name='barcode'))",
    "anndata.AnnData(X=x, obs=obs, var=var).write_h5ad(sys.argv[1])", sep = "; ")
  expect_identical(system2(python, c("-c", shQuote(code), path), stdout = FALSE, stderr = FALSE), 0L)
  input <- exprflow:::.expression_input(path, condition = "group")
  expect_identical(input$genes, sprintf("g%d", 0:5))
  expect_identical(input$cells, sprintf("c%d", 0:8))
  expect_identical(as.character(input$condition), rep(c("a", "b", "c"), 3))
  # Cell i holds 6 (i - 1) + 1 .. 6 i; genes x cells.
  expect_equal(unname(expression_minibatch(path, 1:9, log_normalised = FALSE)), matrix(as.numeric(1:54), 6, 9))
})

test_that("files written by Python's anndata are read, and anndata reads write_h5ad() files", {
  python <- anndata_python()
  skip_if_not(nzchar(python), "python3 with anndata is not installed (Debian: python3-anndata)")
  sce <- small_cells(120)
  ours <- tempfile(fileext = ".h5ad")
  theirs <- tempfile(fileext = ".h5ad")
  on.exit(unlink(c(ours, theirs)))
  write_h5ad(sce, ours)
  script <- tempfile(fileext = ".py")
  on.exit(unlink(script), add = TRUE)
  writeLines(c(
    "import sys, anndata, numpy as np, scipy.sparse as sp",
    "a = anndata.read_h5ad(sys.argv[1])",
    "print(a.n_obs, a.n_vars, int(a.X.sum()), sp.isspmatrix_csr(a.X), ','.join(a.obs.columns))",
    "print(a.obs['cell_type'].dtype.name, a.obs['cell_type'].iloc[0], a.obs['depth'].iloc[0], a.var_names[0])",
    "b = anndata.AnnData(X=sp.csr_matrix(np.log1p(a.X.toarray())), obs=a.obs, var=a.var)",
    "b.layers['counts'] = a.X",
    "b.write_h5ad(sys.argv[2], compression='gzip')",
    "anndata.AnnData(X=sp.csc_matrix(a.X), obs=a.obs, var=a.var).write_h5ad(sys.argv[3])"), script)
  csc <- tempfile(fileext = ".h5ad")
  on.exit(unlink(csc), add = TRUE)
  out <- system2(python, c(script, ours, theirs, csc), stdout = TRUE, stderr = TRUE)
  counts <- SummarizedExperiment::assay(sce, "counts")
  expect_identical(out[1], sprintf("120 2000 %d True %s", as.integer(sum(counts)),
                                   paste(colnames(SummarizedExperiment::colData(sce)), collapse = ",")))
  expect_identical(out[2], sprintf("category %s %s %s", sce$cell_type[1], format(sce$depth[1], nsmall = 1),
                                   rownames(sce)[1]))
  # anndata's own file: X log values, the counts in a layer.
  expect_error(fit_expression_model(theirs, epochs = 1), "raw counts")
  expect_identical(expression_minibatch(theirs, 1:120, assay = "counts"), expression_minibatch(sce, 1:120))
  input <- exprflow:::.expression_input(theirs, assay = "counts", condition = "cell_type")
  expect_identical(as.character(input$condition), as.character(sce$cell_type))
  # A CSC X (one column per gene) streams through a CSR copy in tempdir(),
  # removed as soon as it is open.
  copies <- function() list.files(tempdir(), pattern = "^exprflow-csr-")
  before <- copies()
  expect_identical(expression_minibatch(csc, c(120, 1:119)), expression_minibatch(sce, c(120, 1:119)))
  input <- exprflow:::.expression_input(csc, condition = "cell_type")
  expect_identical(input$file$format, "h5ad_csc")
  expect_identical(input$cells, colnames(sce))
  expect_identical(as.character(input$condition), as.character(sce$cell_type))
  expect_identical(copies(), before)
})
