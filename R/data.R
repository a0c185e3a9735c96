# Data stage, R side: any supported input -> a C++ expression source plus the
# cell covariates. Sparse input crosses into C++ as its CSC arrays (never
# densified); library-size normalisation and log1p happen in C++.

# Counts matrix (genes x cells) and cell covariates of a supported input.
# `assay`: for a SingleCellExperiment the assay of counts (NULL: "counts"), for
# a Seurat object the Seurat assay whose counts layer is read (NULL: its
# DefaultAssay()); matrices have no assays and ignore it.
.counts_and_covariates <- function(x, assay = NULL, arg = "x") {
  if (!is.null(assay)) .check_string(assay, "assay")
  if (methods::is(x, "SummarizedExperiment")) {
    assay <- assay %||% "counts"
    available <- SummarizedExperiment::assayNames(x)
    if (!assay %in% available) {
      stop(sprintf("`assay`: '%s' is not an assay of `%s`; its assays: %s", assay, arg,
                   if (length(available)) .first_few(available, 10L) else "none"), call. = FALSE)
    }
    return(list(counts = SummarizedExperiment::assay(x, assay, withDimnames = TRUE),
                covariates = as.data.frame(SummarizedExperiment::colData(x))))
  }
  if (methods::is(x, "Seurat")) {
    return(list(counts = .seurat_counts(x, assay, arg), covariates = x[[]]))
  }
  # A DelayedMatrix (e.g. an HDF5Array) is taken as a SingleCellExperiment's
  # assay of one is: streamed from its file where it is one, else read.
  if (methods::is(x, "Matrix") || is.matrix(x) || methods::is(x, "DelayedMatrix")) {
    return(list(counts = x, covariates = NULL))
  }
  stop(sprintf(paste0("`%s` must be a SingleCellExperiment, a Seurat object, a sparse (dgCMatrix), dense ",
                      "or DelayedArray matrix of counts (genes x cells); got an object of class '%s'"),
               arg, class(x)[1]), call. = FALSE)
}

# The counts layer of one assay of a Seurat object (SeuratObject 4 and 5).
.seurat_counts <- function(x, assay, arg) {
  if (!requireNamespace("SeuratObject", quietly = TRUE)) {
    stop("reading a Seurat object needs the SeuratObject package", call. = FALSE)
  }
  assay <- assay %||% SeuratObject::DefaultAssay(x)
  available <- SeuratObject::Assays(x)
  if (!assay %in% available) {
    stop(sprintf("`assay`: '%s' is not an assay of the Seurat object `%s`; its assays: %s", assay, arg,
                 .first_few(available, 10L)), call. = FALSE)
  }
  # SeuratObject 5 reads layers with LayerData(); 4 (Debian's) has only
  # GetAssayData(slot =), which 5 deprecates. Looked up by name, as 4 lacks it.
  if ("LayerData" %in% getNamespaceExports("SeuratObject")) {
    layer_data <- getExportedValue("SeuratObject", "LayerData")
    return(layer_data(x, assay = assay, layer = "counts"))
  }
  SeuratObject::GetAssayData(x, assay = assay, slot = "counts")
}

.check_gene_names <- function(genes, arg) {
  if (is.null(genes)) {
    stop(sprintf("`%s` has no gene names: set rownames (genes x cells) first", arg), call. = FALSE)
  }
  if (anyNA(genes) || any(!nzchar(genes))) {
    stop(sprintf("`%s` has missing or empty gene names (rownames)", arg), call. = FALSE)
  }
  if (anyDuplicated(genes)) {
    stop(sprintf("`%s` has duplicated gene names: %s; make them unique (e.g. make.unique())",
                 arg, .first_few(genes[duplicated(genes)])), call. = FALSE)
  }
}

# The C++ source of a genes x cells counts matrix.
.source_from_matrix <- function(counts, arg = "x") {
  genes <- rownames(counts)
  .check_gene_names(genes, arg)
  if (ncol(counts) == 0L) stop(sprintf("`%s` has zero cells", arg), call. = FALSE)
  counts <- .as_counts_matrix(counts, arg)
  if (methods::is(counts, "dgCMatrix")) {
    return(.cpp_source_from_csc(genes, ncol(counts), counts@p, counts@i, counts@x))
  }
  .cpp_source_from_dense(genes, counts)
}

# Counts as a dgCMatrix (sparse input) or a double matrix (anything else),
# checked to be non-negative whole numbers, not all zero.
.as_counts_matrix <- function(counts, arg) {
  if (is.logical(counts) || methods::is(counts, "lMatrix") || methods::is(counts, "nMatrix")) {
    stop(sprintf("the counts of `%s` are logical (TRUE / FALSE) values, not counts", arg), call. = FALSE)
  }
  if (methods::is(counts, "sparseMatrix")) {
    if (!methods::is(counts, "dgCMatrix")) {
      counts <- methods::as(methods::as(methods::as(counts, "CsparseMatrix"), "generalMatrix"), "dMatrix")
    }
    .check_whole_numbers(counts@x, arg)
    .check_some_counts(counts@x, arg)
    return(counts)
  }
  if (methods::is(counts, "Matrix") || methods::is(counts, "DelayedArray")) {
    counts <- as.matrix(counts)
  }
  if (!is.matrix(counts) || !is.numeric(counts)) {
    stop(sprintf("the counts of `%s` must be numeric", arg), call. = FALSE)
  }
  storage.mode(counts) <- "double"
  .check_whole_numbers(counts, arg)
  .check_some_counts(counts, arg)
  counts
}

.check_some_counts <- function(values, arg) {
  if (!any(values > 0, na.rm = TRUE)) {
    stop(sprintf("`%s` holds no counts: every value is 0", arg), call. = FALSE)
  }
}

# Resolves `condition` (a covariate column name, or one value per cell) to a
# factor, or NULL for an unconditional model.
.resolve_condition <- function(condition, covariates, n_cells, arg = "condition") {
  if (is.null(condition)) return(NULL)
  if (.is_column_name(condition, covariates, n_cells)) {
    if (is.null(covariates)) {
      stop(sprintf(paste0("`%s` names a column ('%s') but matrix input has no cell covariates; ",
                          "pass one value per cell instead"), arg, condition), call. = FALSE)
    }
    if (!condition %in% colnames(covariates)) {
      stop(sprintf("`%s` column '%s' does not exist; available columns: %s", arg, condition,
                   if (ncol(covariates)) .first_few(colnames(covariates), 10L) else "none"),
           call. = FALSE)
    }
    values <- covariates[[condition]]
    what <- sprintf("`%s` column '%s'", arg, condition)
  } else {
    values <- condition
    what <- sprintf("`%s`", arg)
  }
  if (length(values) != n_cells) {
    stop(sprintf("%s has %d values for %d cells", what, length(values), n_cells), call. = FALSE)
  }
  if (anyNA(values)) {
    stop(sprintf("%s has %d missing (NA) values; remove those cells or fill them",
                 what, sum(is.na(values))), call. = FALSE)
  }
  # A condition is a category. Whole numbers are taken as category codes
  # (cluster numbers); other numbers (a dose, a score), or very many distinct
  # codes, are measurements that would each become a level.
  if (is.numeric(values)) {
    distinct <- length(unique(values))
    if (any(values != round(values))) {
      stop(sprintf(paste0("%s has non-whole numbers (%d distinct values), but a condition is a category; ",
                          "if they are category codes, convert them with factor()"), what, distinct),
           call. = FALSE)
    }
    if (distinct > 100L) {
      stop(sprintf(paste0("%s has %d distinct numbers, too many for category codes; if they are ",
                          "categories, convert them with factor()"), what, distinct), call. = FALSE)
    }
  }
  if (!is.factor(values) && !is.character(values) && !is.logical(values) && !is.numeric(values)) {
    stop(sprintf("%s must be a factor, character, logical or whole-number vector; got %s", what, class(values)[1]),
         call. = FALSE)
  }
  empty <- !nzchar(trimws(as.character(values)))
  if (any(empty)) {
    stop(sprintf("%s has %d empty (\"\") values; give those cells a level or remove them",
                 what, sum(empty)), call. = FALSE)
  }
  droplevels(as.factor(values))
}

# Several covariates: `condition` as column names (two or more, all columns
# of `covariates`) or as a data.frame of per-cell values, one column per
# covariate. Returns a named list of factors (NULL for none); one covariate
# (a column name or one value per cell) is a list of one, named after its
# column ("condition" for values).
.resolve_covariates <- function(condition, covariates, n_cells, arg = "condition") {
  if (is.null(condition)) return(NULL)
  if (is.data.frame(condition)) {
    if (!ncol(condition) || is.null(names(condition)) || any(!nzchar(names(condition))) ||
        anyDuplicated(names(condition))) {
      stop(sprintf("`%s` as a data.frame needs one named column per covariate", arg), call. = FALSE)
    }
    return(stats::setNames(lapply(names(condition), function(column) {
      .resolve_condition(condition[[column]], NULL, n_cells, sprintf("%s$%s", arg, column))
    }), names(condition)))
  }
  # Strings that are all column names name the covariates, whatever the
  # number of cells (two cells and two covariates are not two levels).
  if (is.character(condition) && length(condition) >= 2L && !is.null(covariates) &&
      all(condition %in% colnames(covariates))) {
    if (anyDuplicated(condition)) stop(sprintf("`%s` names a column twice", arg), call. = FALSE)
    return(stats::setNames(lapply(condition, function(column) {
      .resolve_condition(column, covariates, n_cells, arg)
    }), condition))
  }
  # Some column names and some not: a misspelt column, not cells' levels.
  if (is.character(condition) && length(condition) >= 2L && length(condition) != n_cells && !is.null(covariates) &&
      any(condition %in% colnames(covariates))) {
    missing <- setdiff(condition, colnames(covariates))
    stop(sprintf("condition column(s) %s do not exist; available columns: %s",
                 paste0("'", missing, "'", collapse = ", "),
                 if (ncol(covariates)) .first_few(colnames(covariates), 10L) else "none"), call. = FALSE)
  }
  name <- if (.is_column_name(condition, covariates, n_cells)) condition else "condition"
  stats::setNames(list(.resolve_condition(condition, covariates, n_cells, arg)), name)
}

# Whether one string names a covariate column rather than the level of a
# single cell: always with several cells; with one cell, when it is a column.
.is_column_name <- function(condition, covariates, n_cells) {
  is.character(condition) && length(condition) == 1L &&
    (n_cells != 1L || (!is.null(covariates) && condition %in% colnames(covariates)))
}

# One label per cell for a list of covariate factors: the factor itself for
# one, their combination ("B / stim") for several; NULL for none.
.combined_condition <- function(conditions) {
  if (!length(conditions)) return(NULL)
  if (length(conditions) == 1L) return(conditions[[1L]])
  droplevels(interaction(conditions, sep = " / ", lex.order = TRUE))
}

# Everything the fitting and embedding functions need from an input.
# `conditions`: the covariates as a named list of factors; `condition`: one
# label per cell (.combined_condition()).
.expression_input <- function(x, assay = NULL, condition = NULL, genes = NULL, arg = "x") {
  if (.is_file_input(x)) return(.hdf5_input(x, assay, condition, genes, arg))
  parts <- .counts_and_covariates(x, assay, arg)
  counts <- parts$counts
  backed <- .hdf5_backed_counts(counts)
  if (!is.null(backed)) {
    # Streamed from the HDF5 file behind the DelayedArray, as a path would be.
    .check_gene_names(rownames(counts), arg)
    source <- .with_gene_selection(
      .cpp_source_from_hdf5_matrix(backed$path, backed$name, rownames(counts), genes %||% character(),
                                   tempdir()),
      arg, backed$path)$source
    .check_some_counts(.cpp_source_library_sizes(source), arg)
    genes <- genes %||% rownames(counts)
  } else {
    if (!is.null(genes)) counts <- .align_genes(counts, genes, arg)
    source <- .source_from_matrix(counts, arg)
    genes <- rownames(counts)
  }
  conditions <- .resolve_covariates(condition, parts$covariates, ncol(counts))
  list(source = source, genes = genes, cells = colnames(counts), n_cells = ncol(counts),
       condition = .combined_condition(conditions), conditions = conditions,
       covariates = parts$covariates)
}

# Rows of `counts` in the order of `genes` (a model's genes); missing genes are an error.
.align_genes <- function(counts, genes, arg) {
  present <- rownames(counts)
  .check_gene_names(present, arg)
  if (identical(present, genes)) return(counts)
  missing <- setdiff(genes, present)
  if (length(missing)) {
    stop(sprintf("`%s` lacks %d of the model's %d genes (%s)", arg, length(missing), length(genes),
                 .first_few(missing)), call. = FALSE)
  }
  counts[genes, , drop = FALSE]
}

#' Minibatches exactly as the C++ core sees them
#'
#' Builds the core's data source from `x` and returns the requested cells,
#' densified from the sparse (or dense) counts in C++, either as raw counts
#' or library-size normalised and log1p transformed
#' (`log1p(count / total * 1e4)`). Useful to check what a model is trained on.
#'
#' @param x A SingleCellExperiment, a Seurat object, a dgCMatrix or a dense
#'   matrix of counts (genes x cells, gene names as rownames).
#' @param cells Integer indices of the cells to return.
#' @param log_normalised Return log-normalised values (`TRUE`) or raw counts.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @return A dense genes x cells matrix.
#' @examples
#' sce <- example_pbmc()
#' expression_minibatch(sce, 1:3)[1:5, ]
#' @export
expression_minibatch <- function(x, cells, log_normalised = TRUE, assay = NULL) {
  input <- .expression_input(x, assay)
  if (!is.numeric(cells) || anyNA(cells) || any(cells != round(cells)) || any(cells < 1) || any(cells > input$n_cells)) {
    stop(sprintf("`cells` must be indices between 1 and %d", input$n_cells), call. = FALSE)
  }
  out <- .cpp_source_minibatch(input$source, as.integer(cells), isTRUE(log_normalised))
  dimnames(out) <- list(input$genes, input$cells[cells])
  out
}

# Raw counts are finite whole numbers; normalised values passed by mistake are not.
.check_whole_numbers <- function(values, arg) {
  missing <- sum(!is.finite(values))
  if (missing) {
    stop(sprintf("`%s` holds %d missing or infinite values (NA, NaN or Inf): counts must be finite",
                 arg, missing), call. = FALSE)
  }
  if (any(values < 0)) {
    stop(sprintf("`%s` holds negative values: counts must be non-negative", arg), call. = FALSE)
  }
  if (any(values != round(values))) {
    stop(sprintf(paste0("`%s` holds non-integer values: exprflow needs raw counts (it normalises ",
                        "them itself); pass the raw counts (`assay` names where they are)"), arg),
         call. = FALSE)
  }
}

# Log-normalisation in R, as the C++ source does it (for generated cells,
# metrics and baselines).
.library_sizes <- function(counts) {
  if (.is_sparse(counts)) Matrix::colSums(counts) else colSums(counts)
}

# log1p(count / library size * scale_factor); a cell with library size 0 stays 0.
.log_normalise <- function(counts, scale_factor, library_size = .library_sizes(counts)) {
  factor <- ifelse(library_size > 0, scale_factor / library_size, 0)
  if (.is_sparse(counts)) {
    counts@x <- log1p(counts@x * rep(factor, diff(counts@p)))
    return(counts)
  }
  log1p(counts * rep(factor, each = nrow(counts)))
}
