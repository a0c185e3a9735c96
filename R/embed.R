#' Embed cells with a trained model
#'
#' Encodes the clean (log-normalised, standardised) expression of each cell
#' with the model's encoder (EMA weights) and pools its tokens to one vector
#' per cell (the mean over the latent tokens for `"latent_tokens"`). Genes are
#' matched to the model's genes by name; genes the model does not know are
#' ignored, and a missing model gene is an error.
#'
#' `embed_cells()` is generic: for a `"pca_gaussian"` baseline of
#' [fit_baseline()] it returns the PCA scores of log-normalised expression (the
#' embedding baseline).
#'
#' @param model An `exprflow_model`, or an `exprflow_baseline` of type `"pca_gaussian"`.
#' @param x A SingleCellExperiment, a Seurat object, a dgCMatrix, a dense or
#'   DelayedArray matrix of raw counts (genes x cells), or the path of an
#'   `.h5` / `.h5ad` file (as [fit_expression_model()] reads them).
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @param name Name of the reduced dimension stored in `x`.
#' @param ... Arguments of the methods; a name no method knows (e.g. a
#'   misspelling) is an error.
#' @return For a SingleCellExperiment: `x` with `reducedDim(x, name)` set; for
#'   a Seurat object: `x` with a DimReduc `name` (lower case); otherwise a
#'   cells x dims matrix.
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", condition = "cell_type", epochs = 1,
#'                               n_tokens = 4, token_dim = 16, n_layers = 1,
#'                               n_heads = 2, hidden = 64)
#' sce <- embed_cells(model, sce)
#' dim(SingleCellExperiment::reducedDim(sce, "EXPRFLOW"))
#' @export
embed_cells <- function(model, x, assay = NULL, name = "EXPRFLOW", ...) UseMethod("embed_cells")

#' @rdname embed_cells
#' @export
embed_cells.exprflow_model <- function(model, x, assay = NULL, name = "EXPRFLOW", ...) {
  .reject_unknown_arguments(list(...), "embed_cells")
  pointer <- .model_pointer(model)
  .check_string(name, "name")
  input <- .expression_input(x, assay, genes = model$genes)
  embedding <- .cpp_model_embed(pointer, input$source)
  dimnames(embedding) <- list(input$cells, paste0(name, "_", seq_len(ncol(embedding))))
  .store_embedding(x, embedding, name)
}

# An embedding (cells x dims) returned the way the input asks: a reducedDim of
# a SingleCellExperiment, a DimReduc of a Seurat object, or the matrix itself.
.store_embedding <- function(x, embedding, name) {
  if (methods::is(x, "SingleCellExperiment")) {
    SingleCellExperiment::reducedDim(x, name) <- embedding
    return(x)
  }
  if (methods::is(x, "Seurat")) {
    key <- paste0(gsub("[^A-Za-z0-9]", "", name), "_")
    colnames(embedding) <- paste0(key, seq_len(ncol(embedding)))
    x[[tolower(name)]] <- SeuratObject::CreateDimReducObject(
      embeddings = embedding, key = key, assay = SeuratObject::DefaultAssay(x))
    return(x)
  }
  embedding
}

# The embedding `name` that .store_embedding() put in a SingleCellExperiment
# or Seurat object `x` (cells x dims), with the cells' covariates.
.stored_embedding <- function(x, name, arg) {
  .check_string(name, "dimred")
  if (methods::is(x, "SingleCellExperiment")) {
    available <- SingleCellExperiment::reducedDimNames(x)
    found <- name %in% available
    embedding <- if (found) SingleCellExperiment::reducedDim(x, name)
    covariates <- as.data.frame(SummarizedExperiment::colData(x))
  } else {
    available <- SeuratObject::Reductions(x)
    found <- tolower(name) %in% available
    embedding <- if (found) SeuratObject::Embeddings(x, reduction = tolower(name))
    covariates <- x[[]]
  }
  if (!found) {
    stop(sprintf("`dimred`: '%s' is not an embedding of `%s` (embed_cells() stores one); its embeddings: %s",
                 name, arg, if (length(available)) .first_few(available, 10L) else "none"), call. = FALSE)
  }
  list(embedding = as.matrix(embedding), covariates = covariates)
}

#' @export
embed_cells.default <- function(model, x, assay = NULL, name = "EXPRFLOW", ...) {
  stop("`model` must be an exprflow_model (from fit_expression_model() or load_model()) or a ",
       "\"pca_gaussian\" exprflow_baseline (from fit_baseline())", call. = FALSE)
}
