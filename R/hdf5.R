# HDF5 files in and out: 10x Genomics .h5 and AnnData .h5ad paths are
# streamed by the core (data/hdf5_source; only each cell's offset is held
# in memory), and generated cells are written as .h5ad.

# Whether `x` is a path to read (one string), rather than an object.
.is_file_input <- function(x) is.character(x) && length(x) == 1L && !is.na(x)

# Everything .expression_input() returns, for a file: the streamed source,
# its genes, cells and covariates (obs columns; none in a 10x file).
# `assay` names an .h5ad layer (NULL: X).
.hdf5_input <- function(path, assay = NULL, condition = NULL, genes = NULL, arg = "x") {
  if (!is.null(assay)) .check_string(assay, "assay")
  if (!file.exists(path)) stop(sprintf("`%s`: file '%s' does not exist", arg, path), call. = FALSE)
  if (dir.exists(path)) stop(sprintf("`%s`: '%s' is a folder, not an .h5 / .h5ad file", arg, path), call. = FALSE)
  # `genes` (a model's): the core reads them from the file in their order.
  # A CSC matrix's CSR copy goes to the session's temporary folder.
  file <- .with_gene_selection(
    .cpp_source_from_hdf5(path.expand(path), assay %||% "", genes %||% character(), tempdir()), arg, path)
  .check_some_counts(.cpp_source_library_sizes(file$source), arg)
  cells <- .cpp_hdf5_cell_names(file$source)
  if (!length(cells)) cells <- sprintf("cell_%d", seq_len(file$n_cells))
  covariates <- .hdf5_obs(file$source, cells)
  conditions <- .resolve_covariates(condition, covariates, file$n_cells)
  list(source = file$source, genes = file$genes, cells = cells, n_cells = file$n_cells,
       condition = .combined_condition(conditions), conditions = conditions, covariates = covariates,
       file = list(path = path, format = file$format, layer = assay))
}

# Evaluates `open` (a core call that selects genes from a file) and says
# which argument and file lack genes when some are missing.
.with_gene_selection <- function(open, arg, path) {
  tryCatch(open, error = function(e) {
    message <- conditionMessage(e)
    if (!startsWith(message, "the data lacks")) stop(e)
    stop(sprintf("`%s`: '%s' %s", arg, path, sub("^the data ", "", message)), call. = FALSE)
  })
}

# Counts that a DelayedArray keeps in an HDF5 file, untouched (no subset,
# transposition or arithmetic on top): list(path, name) of the HDF5 object
# the core streams, one contiguous run per cell. That is an HDF5Array's
# dataset (writeHDF5Array(), saveHDF5SummarizedExperiment(), the dense X of
# H5ADMatrix()), whose genes x cells matrix HDF5 stores as (cells, genes),
# or the group of a sparse seed: a TENxMatrix's 10x group (CSC, one column
# per cell) or a sparse H5ADMatrix's X (an AnnData CSR has one row per cell;
# a CSC one is copied to CSR by the core, as for a path). NULL otherwise:
# the counts are then read into memory. (Debian 12's HDF5Array 1.26 fails in
# H5ADMatrix() on a sparse X; test-hdf5.R builds the object from X's group
# as H5ADMatrix() does, and tests both layouts.)
.hdf5_backed_counts <- function(counts) {
  if (!methods::is(counts, "DelayedArray") || !requireNamespace("DelayedArray", quietly = TRUE)) return(NULL)
  if (!DelayedArray::isPristine(counts, ignore.dimnames = TRUE)) return(NULL)
  if (length(dim(counts)) != 2L) return(NULL)
  seed <- DelayedArray::seed(counts)
  # A reshaped seed shows the dataset in another shape than it is stored.
  if (methods::is(seed, "HDF5ArraySeed") && !methods::is(seed, "ReshapedHDF5ArraySeed")) {
    return(list(path = seed@filepath, name = seed@name))
  }
  # A sparse group streams when each cell is one indptr segment: a CSC
  # genes x cells matrix (10x), or AnnData's X, whose own encoding the core
  # reads (a generic CSR seed has one segment per gene). `subdata` names
  # values stored elsewhere than the group's "data".
  # (A dense H5ADMatrix seed is an HDF5ArraySeed, returned above.)
  sparse <- methods::is(seed, "CSC_H5SparseMatrixSeed") || methods::is(seed, "H5ADMatrixSeed")
  if (sparse && is.null(seed@subdata)) {
    return(list(path = seed@filepath, name = seed@group))
  }
  NULL
}

# The obs columns as a data.frame (labels as factors); columns of encodings
# exprflow does not read are left out.
.hdf5_obs <- function(source, cells) {
  columns <- .cpp_hdf5_obs(source)
  columns <- columns[!vapply(columns, is.null, logical(1))]
  columns <- lapply(columns, function(column) if (is.character(column)) factor(column) else column)
  if (!length(columns)) return(data.frame(row.names = make.unique(cells)))
  data.frame(columns, row.names = make.unique(cells), check.names = FALSE, stringsAsFactors = FALSE)
}

#' Write cells as an AnnData .h5ad file
#'
#' Writes counts (e.g. cells from [generate_cells()]) with their cell
#' covariates to an `.h5ad` file that Python's anndata / scanpy read
#' (`anndata.read_h5ad()`) and that [fit_expression_model()] streams. `X`
#' is a compressed sparse row matrix (cells x genes; float32 values, chunked
#' and gzip-compressed by blocks of about `block_size` cells), `obs` holds the
#' covariates (numbers as numeric columns; factors, characters and logicals
#' as categoricals) and `var` the gene names. The file is written under a
#' temporary name and renamed, so an interrupted write never leaves half a
#' file.
#'
#' @param x A SingleCellExperiment (the assay `assay`, colData as `obs`), or
#'   a matrix (genes x cells, dense or sparse, gene names as rownames).
#' @param path File to write (usually ending in `.h5ad`); replaced if it exists.
#' @param assay For a SingleCellExperiment, the assay written as `X`.
#' @param block_size Cells per compressed chunk. Training from the file
#'   shuffles blocks of about one chunk (a chunk is decompressed whole), so
#'   small chunks keep epochs random and reads cheap.
#' @return `path`, invisibly.
#' @seealso [fit_expression_model()], which trains from such a file.
#' @examples
#' sce <- example_pbmc()[, 1:50]
#' path <- tempfile(fileext = ".h5ad")
#' write_h5ad(sce, path)
#' model <- fit_expression_model(path, "latent_tokens", condition = "cell_type",
#'                               epochs = 1, n_tokens = 4, token_dim = 16, n_layers = 1,
#'                               n_heads = 2, hidden = 32)
#' @export
write_h5ad <- function(x, path, assay = "counts", block_size = 64) {
  .check_string(path, "path")
  block_size <- .check_count(block_size, "block_size")
  parts <- .counts_and_covariates(x, if (methods::is(x, "SummarizedExperiment")) assay)
  .check_gene_names(rownames(parts$counts), "x")
  folder <- dirname(path.expand(path))
  if (!dir.exists(folder)) stop(sprintf("`path`: folder '%s' does not exist", folder), call. = FALSE)
  .write_counts_h5ad(parts$counts, path.expand(path), .obs_columns(parts$covariates), block_size)
  invisible(path)
}

# Counts (genes x cells, any matrix) as a CSR .h5ad with `obs` columns
# (.obs_columns()); the cells' names, or cell_1, cell_2, ...
.write_counts_h5ad <- function(counts, path, obs = stats::setNames(list(), character(0)), block_size = 64L) {
  counts <- methods::as(methods::as(methods::as(counts, "CsparseMatrix"), "generalMatrix"), "dMatrix")
  if (any(!is.finite(counts@x))) stop("`x` holds missing (NA) or non-finite values", call. = FALSE)
  cells <- colnames(counts) %||% sprintf("cell_%d", seq_len(ncol(counts)))
  .cpp_write_h5ad(path, rownames(counts), cells, counts@p, counts@i, counts@x, obs, block_size)
}

# colData / covariates as the writer's obs columns: numbers, or levels and
# 0-based codes (-1 for NA).
.obs_columns <- function(covariates) {
  # Named even when empty: the writer reads the columns' names.
  out <- stats::setNames(list(), character(0))
  if (is.null(covariates) || !ncol(covariates)) return(out)
  for (name in colnames(covariates)) {
    column <- covariates[[name]]
    if (is.numeric(column) && !is.factor(column)) {
      out[[name]] <- as.double(column)
    } else if (is.factor(column) || is.character(column) || is.logical(column)) {
      column <- as.factor(column)
      out[[name]] <- list(levels = levels(column), codes = ifelse(is.na(column), -1L, as.integer(column) - 1L))
    } else {
      stop(sprintf("colData column '%s' is a %s; write_h5ad() writes numeric, factor, character and logical columns",
                   name, class(column)[1]), call. = FALSE)
    }
  }
  out
}
