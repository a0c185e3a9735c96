# Interpretation of token models: which genes each token reads, how tokens
# respond to conditions, and which gene sets a token's top genes fall in.

# A model's token names: its gene sets' (and "residual_genes") where tokens
# stand for gene sets, else token_1, token_2, ...
.token_names <- function(model, n) {
  named <- model$token_names
  if (length(named) == n) named else paste0("token_", seq_len(n))
}

#' Gene loadings of a token model's tokens
#'
#' Two views of what each latent token summarises:
#' * `"weights"`: the encoder's linear path gene -> token (the product of its
#'   two linear layers, ignoring the LayerNorm and GELU between them), as the
#'   norm over the token's dimensions. Unsigned; needs no data.
#' * `"gradient"`: the mean over the cells of `x` of the gradient of the
#'   token's norm with respect to each gene's standardised log expression.
#'   Signed (positive: more of the gene, a larger token), and it includes the
#'   encoder's non-linearity.
#'
#' @param model A token `exprflow_model` (e.g. `"latent_tokens"`).
#' @param x Cells to average gradients over (needed for `"gradient"`): a
#'   SingleCellExperiment, Seurat object or count matrix holding the model's genes.
#' @param method `"weights"` or `"gradient"`.
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @return A tokens x genes matrix (rownames `token_1`, ..., or the gene
#'   sets' names and `residual_genes` for gene-set tokens; colnames the
#'   model's genes).
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", epochs = 1, n_tokens = 4,
#'                               token_dim = 16, n_layers = 1, n_heads = 2, hidden = 64)
#' loadings <- token_loadings(model)
#' head(sort(loadings[1, ], decreasing = TRUE))
#' @export
token_loadings <- function(model, x = NULL, method = c("weights", "gradient"), assay = NULL) {
  pointer <- .model_pointer(model)
  method <- match.arg(method)
  source <- NULL
  if (method == "gradient") {
    if (is.null(x)) stop("`x` (cells to average gradients over) is required for method = \"gradient\"",
                         call. = FALSE)
    source <- .expression_input(x, assay, genes = model$genes)$source
  }
  loadings <- .cpp_model_token_loadings(pointer, method, source)
  dimnames(loadings) <- list(.token_names(model, nrow(loadings)), model$genes)
  loadings
}

#' Token activations of cells, and their means by condition
#'
#' The activation of a token in a cell is the L2 norm of the token the
#' encoder produces from the cell's clean expression (before positions are
#' added). With `condition`, the mean activation per condition level is
#' returned as a tidy table, together with each token's most specific level.
#'
#' @inheritParams token_loadings
#' @param x Cells: a SingleCellExperiment, Seurat object or count matrix
#'   holding the model's genes.
#' @param condition `NULL`, a colData column name, or one label per cell.
#' @return Without `condition`: a cells x tokens matrix. With it: a
#'   data.frame with columns `token`, `condition`, `mean_activation`,
#'   `z_score` (the level's mean standardised against the token's mean and sd
#'   over all cells) and `n_cells`.
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", epochs = 1, n_tokens = 4,
#'                               token_dim = 16, n_layers = 1, n_heads = 2, hidden = 64)
#' head(token_activations(model, sce, condition = "cell_type"))
#' @export
token_activations <- function(model, x, condition = NULL, assay = NULL) {
  pointer <- .model_pointer(model)
  input <- .expression_input(x, assay, condition = condition, genes = model$genes)
  activations <- .cpp_model_token_activations(pointer, input$source)
  dimnames(activations) <- list(input$cells, .token_names(model, ncol(activations)))
  if (is.null(input$condition)) return(activations)
  labels <- input$condition
  centre <- colMeans(activations)
  spread <- apply(activations, 2, stats::sd)
  spread[!is.finite(spread) | spread == 0] <- NA_real_
  rows <- lapply(levels(labels), function(level) {
    in_level <- labels == level
    means <- colMeans(activations[in_level, , drop = FALSE])
    data.frame(token = colnames(activations), condition = level, mean_activation = means,
               z_score = (means - centre) / spread, n_cells = sum(in_level), stringsAsFactors = FALSE)
  })
  out <- do.call(rbind, rows)
  out$token <- factor(out$token, levels = colnames(activations))
  out$condition <- factor(out$condition, levels = levels(labels))
  rownames(out) <- NULL
  out[order(out$token, out$condition), ]
}

#' Gene-set enrichment of each token's top genes
#'
#' Ranks the model's genes by their loading on each token (see
#' [token_loadings()]), takes the top `n_top`, and tests them against
#' `gene_sets` with [gene_set_enrichment()], using the model's genes as the
#' universe (hypergeometric test, Benjamini-Hochberg within each token).
#'
#' @inheritParams token_loadings
#' @param gene_sets A named list of gene sets, e.g. `read_gmt(path)`, or the
#'   path of a GMT file.
#' @param n_top Number of top genes per token.
#' @param direction How genes are ranked: `"absolute"` loading, only
#'   `"positive"`, or only `"negative"` (the last two make sense for gradients).
#' @param loadings Optional precomputed tokens x genes loadings (skips `method`).
#' @return A data.frame as from [gene_set_enrichment()] with `query` renamed
#'   `token`, sorted by token and p-value.
#' @examples
#' sce <- example_pbmc()[, 1:300]  # a slice, so that the example runs in seconds
#' model <- fit_expression_model(sce, "latent_tokens", epochs = 1, n_tokens = 4,
#'                               token_dim = 16, n_layers = 1, n_heads = 2, hidden = 64)
#' sets <- list(T_CELL = c("CD3D", "CD3E", "IL7R", "CD2"), B_CELL = c("MS4A1", "CD79A", "CD79B"))
#' head(token_enrichment(model, sets, n_top = 50))
#' @export
token_enrichment <- function(model, gene_sets, x = NULL, method = c("weights", "gradient"), n_top = 50,
                             direction = c("absolute", "positive", "negative"), assay = NULL,
                             loadings = NULL) {
  direction <- match.arg(direction)
  if (is.character(gene_sets) && length(gene_sets) == 1L) gene_sets <- read_gmt(gene_sets)
  .check_count(n_top, "n_top")
  if (is.null(loadings)) loadings <- token_loadings(model, x, match.arg(method), assay)
  if (!is.matrix(loadings) || is.null(colnames(loadings))) {
    stop("`loadings` must be a tokens x genes matrix with gene names as colnames", call. = FALSE)
  }
  if (n_top >= ncol(loadings)) {
    stop(sprintf("`n_top` (%d) must be smaller than the number of genes (%d)", n_top, ncol(loadings)),
         call. = FALSE)
  }
  score <- switch(direction, absolute = abs(loadings), positive = loadings, negative = -loadings)
  tops <- lapply(seq_len(nrow(score)), function(k) {
    colnames(score)[order(score[k, ], decreasing = TRUE)[seq_len(n_top)]]
  })
  names(tops) <- rownames(loadings) %||% paste0("token_", seq_len(nrow(loadings)))
  result <- gene_set_enrichment(tops, gene_sets, universe = colnames(loadings))
  names(result)[names(result) == "query"] <- "token"
  result$token <- factor(result$token, levels = names(tops))
  result <- result[order(result$token, result$p_value), ]
  rownames(result) <- NULL
  result
}
