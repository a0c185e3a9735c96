# Data stage, R side: any supported input -> a C++ expression source plus the
# cell covariates. Sparse input crosses into C++ as its CSC arrays (never
# densified); library-size normalisation and log1p happen in C++.

# Counts matrix (genes x cells) and cell covariates of a supported input.
.counts_and_covariates <- function(x, assay = "counts", arg = "x") {
  if (methods::is(x, "SummarizedExperiment")) {
    .check_string(assay, "assay")
    available <- SummarizedExperiment::assayNames(x)
    if (!assay %in% available) {
      stop(sprintf("assay '%s' is not in `%s`; available assays: %s", assay, arg,
                   if (length(available)) .first_few(available, 10L) else "none"), call. = FALSE)
    }
    return(list(counts = SummarizedExperiment::assay(x, assay, withDimnames = TRUE),
                covariates = as.data.frame(SummarizedExperiment::colData(x))))
  }
  if (methods::is(x, "Seurat")) {
    if (!requireNamespace("SeuratObject", quietly = TRUE)) {
      stop("reading a Seurat object needs the SeuratObject package", call. = FALSE)
    }
    rna <- if ("RNA" %in% names(x@assays)) "RNA" else SeuratObject::DefaultAssay(x)
    counts <- if (exists("LayerData", asNamespace("SeuratObject"))) {
      SeuratObject::LayerData(x, assay = rna, layer = "counts")
    } else {
      SeuratObject::GetAssayData(x, assay = rna, slot = "counts")
    }
    return(list(counts = counts, covariates = x[[]]))
  }
  if (methods::is(x, "Matrix") || is.matrix(x)) {
    return(list(counts = x, covariates = NULL))
  }
  stop(sprintf(paste0("`%s` must be a SingleCellExperiment, a Seurat object, a sparse (dgCMatrix) ",
                      "or a dense matrix of counts (genes x cells); got an object of class '%s'"),
               arg, class(x)[1]), call. = FALSE)
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
# checked to be non-negative whole numbers.
.as_counts_matrix <- function(counts, arg) {
  if (methods::is(counts, "sparseMatrix")) {
    if (!methods::is(counts, "dgCMatrix")) {
      counts <- methods::as(methods::as(methods::as(counts, "CsparseMatrix"), "generalMatrix"), "dMatrix")
    }
    .check_whole_numbers(counts@x, arg)
    return(counts)
  }
  if (methods::is(counts, "Matrix") || methods::is(counts, "DelayedArray")) {
    counts <- as.matrix(counts)
  }
  if (!is.matrix(counts) || !(is.numeric(counts) || is.logical(counts))) {
    stop(sprintf("the counts of `%s` must be numeric", arg), call. = FALSE)
  }
  storage.mode(counts) <- "double"
  .check_whole_numbers(counts, arg)
  counts
}

# Resolves `condition` (a covariate column name, or one value per cell) to a
# factor, or NULL for an unconditional model.
.resolve_condition <- function(condition, covariates, n_cells, arg = "condition") {
  if (is.null(condition)) return(NULL)
  if (is.character(condition) && length(condition) == 1L && n_cells != 1L) {
    if (is.null(covariates)) {
      stop(sprintf(paste0("`%s` names a column ('%s') but matrix input has no cell covariates; ",
                          "pass one value per cell instead"), arg, condition), call. = FALSE)
    }
    if (!condition %in% colnames(covariates)) {
      stop(sprintf("condition column '%s' does not exist; available columns: %s", condition,
                   if (ncol(covariates)) .first_few(colnames(covariates), 10L) else "none"),
           call. = FALSE)
    }
    values <- covariates[[condition]]
  } else {
    values <- condition
  }
  if (length(values) != n_cells) {
    stop(sprintf("`%s` has %d values for %d cells", arg, length(values), n_cells), call. = FALSE)
  }
  if (anyNA(values)) {
    stop(sprintf("`%s` has %d missing (NA) values; remove those cells or fill them",
                 arg, sum(is.na(values))), call. = FALSE)
  }
  droplevels(as.factor(values))
}

# Everything the fitting and embedding functions need from an input.
.expression_input <- function(x, assay = "counts", condition = NULL, genes = NULL, arg = "x") {
  parts <- .counts_and_covariates(x, assay, arg)
  counts <- parts$counts
  if (!is.null(genes)) counts <- .align_genes(counts, genes, arg)
  source <- .source_from_matrix(counts, arg)
  list(source = source, genes = rownames(counts), cells = colnames(counts), n_cells = ncol(counts),
       condition = .resolve_condition(condition, parts$covariates, ncol(counts)),
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
#' @param assay For a SingleCellExperiment, the assay holding raw counts.
#' @return A dense genes x cells matrix.
#' @examples
#' sce <- example_pbmc()
#' expression_minibatch(sce, 1:3)[1:5, ]
#' @export
expression_minibatch <- function(x, cells, log_normalised = TRUE, assay = "counts") {
  input <- .expression_input(x, assay)
  if (!is.numeric(cells) || anyNA(cells) || any(cells != round(cells)) || any(cells < 1) || any(cells > input$n_cells)) {
    stop(sprintf("`cells` must be indices between 1 and %d", input$n_cells), call. = FALSE)
  }
  out <- .cpp_source_minibatch(input$source, as.integer(cells), isTRUE(log_normalised))
  dimnames(out) <- list(input$genes, input$cells[cells])
  out
}

# Raw counts are whole numbers; normalised values passed by mistake are not.
# (Negative and non-finite values are reported by the C++ source, with their position.)
.check_whole_numbers <- function(values, arg) {
  finite <- values[is.finite(values)]
  if (any(finite < 0)) {
    stop(sprintf("`%s` holds negative values: counts must be non-negative", arg), call. = FALSE)
  }
  if (any(finite != round(finite))) {
    stop(sprintf(paste0("`%s` holds non-integer values: exprflow needs raw counts (it normalises ",
                        "them itself); pass the raw counts (e.g. `assay = \"counts\"`)"), arg),
         call. = FALSE)
  }
}
