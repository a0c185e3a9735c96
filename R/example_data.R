#' Small real example dataset: PBMC3k subset
#'
#' Loads a small subset of the 10x Genomics PBMC3k dataset (peripheral blood
#' mononuclear cells of a healthy donor) with raw integer UMI counts and the
#' Seurat tutorial cell-type labels. It is meant for examples, vignettes and
#' tests.
#'
#' @param as Return type: \code{"SingleCellExperiment"} (default) or
#'   \code{"matrix"}.
#'
#' @return For \code{as = "SingleCellExperiment"}, a
#'   \code{\link[SingleCellExperiment]{SingleCellExperiment}} with 2,000 genes x
#'   1,200 cells: assay \code{counts} (a \code{dgCMatrix} of integer-valued UMI
#'   counts, gene symbols as row names, cell barcodes as column names) and
#'   \code{colData} columns \code{cell_type} (factor, levels sorted
#'   alphabetically; 9 types), \code{seurat_cluster} (integer, 0-8) and
#'   \code{nCount_RNA_full} (integer, the cell's total UMI count over all 13,714
#'   genes of the full matrix). For \code{as = "matrix"}, a list with elements
#'   \code{counts} (the same \code{dgCMatrix}) and \code{cell_type} (the same
#'   factor).
#'
#' @details The subset was made by \code{data-raw/make_example_data.R} (in the
#' package source repository; run with \code{Rscript
#' data-raw/make_example_data.R} from the repository root) from the full QC'd
#' matrix (13,714 genes x 2,638 cells):
#' \itemize{
#'   \item cells: 1,200 cells, sampled with a fixed seed and stratified by
#'     \code{cell_type}; the rare types DC (32 cells) and Platelet (14 cells)
#'     are kept whole, the other seven types are sampled proportionally (about
#'     44.5\% of each). Cells keep their original order.
#'   \item genes: the 2,000 genes with the largest variance of log-normalised
#'     expression, \code{log1p(count / library_size * 1e4)}, computed on all
#'     2,638 cells; genes keep their original order. Gene symbols were already
#'     unique (no \code{make.unique()} needed).
#'   \item every cell has a positive library size over the 2,000 genes (no cell
#'     had to be dropped). The counts are not re-normalised: column sums of
#'     \code{counts} are the library sizes over the selected genes, and
#'     \code{nCount_RNA_full} keeps the full-matrix total.
#' }
#' The file is stored as \code{inst/extdata/pbmc_small.rds} (a list with
#' \code{counts} and \code{cell_data}, saved with \code{xz} compression).
#'
#' @source 10x Genomics, "3k PBMCs from a Healthy Donor" (Cell Ranger 1.1.0),
#'   processed as in the Seurat v3 PBMC3k tutorial (cells with 200-2,500
#'   detected genes and < 5\% mitochondrial reads; genes detected in >= 3
#'   cells), with the tutorial's manual cluster annotation as cell-type labels
#'   (Satija et al. 2015, Nat Biotechnol; Stuart et al. 2019, Cell). Obtained
#'   from the data of the clustifyr R package (GitHub \code{rnabioco/clustifyr},
#'   MIT licence: \code{data/pbmc_matrix.rda} and \code{data/pbmc_meta.rda});
#'   clustifyr ships log-normalised values, from which the integer counts were
#'   recovered exactly as \code{round(expm1(x) * nCount_RNA / 1e4)} (column sums
#'   equal \code{nCount_RNA} for every cell). The provenance is recorded in
#'   \code{../shared/data/scrna_pbmc3k_seurat/SOURCE.md} relative to the package
#'   source repository.
#'
#' @examples
#' sce <- example_pbmc()
#' sce
#' table(SummarizedExperiment::colData(sce)$cell_type)
#'
#' x <- example_pbmc(as = "matrix")
#' dim(x$counts)
#' summary(Matrix::colSums(x$counts))
#'
#' @export
example_pbmc <- function(as = c("SingleCellExperiment", "matrix")) {
  as <- match.arg(as)
  path <- system.file("extdata", "pbmc_small.rds", package = "exprflow")
  if (!nzchar(path) || !file.exists(path)) {
    stop("example data file 'extdata/pbmc_small.rds' not found in the ",
         "installed 'exprflow' package; rebuild it with ",
         "`Rscript data-raw/make_example_data.R` and reinstall the package",
         call. = FALSE)
  }
  # Load Matrix so that the returned dgCMatrix has its methods (`[`, ...) even
  # when nothing else has loaded the Matrix namespace yet.
  loadNamespace("Matrix")
  dat <- readRDS(path)
  counts <- dat$counts
  cell_data <- dat$cell_data
  cell_type <- factor(cell_data$cell_type,
                      levels = sort(unique(cell_data$cell_type)))

  if (as == "matrix") {
    return(list(counts = counts, cell_type = cell_type))
  }

  col_data <- S4Vectors::DataFrame(cell_data, check.names = FALSE)
  col_data$cell_type <- cell_type
  rownames(col_data) <- colnames(counts)
  SingleCellExperiment::SingleCellExperiment(
    assays = list(counts = counts),
    colData = col_data
  )
}

#' Example gene sets: MSigDB Hallmark on the example data's genes
#'
#' The 50 MSigDB Hallmark gene sets (Liberzon et al. 2015) restricted to the
#' 2,000 genes of [example_pbmc()], keeping the 45 sets with at least 5 of
#' them: gene sets for examples of `fit_expression_model(architecture =
#' "pathway_tokens")` and [token_enrichment()]. Built by
#' `data-raw/make_example_gene_sets.R` and stored as
#' `inst/extdata/hallmark_pbmc_small.gmt`.
#'
#' @return A named list of character vectors (see [read_gmt()]).
#' @source MSigDB Hallmark collection (human gene symbols), distributed by the
#'   Broad Institute and UC San Diego under CC BY 4.0. Liberzon A. et al.
#'   (2015) The Molecular Signatures Database Hallmark Gene Set Collection.
#'   Cell Systems 1:417-425.
#' @examples
#' sets <- example_gene_sets()
#' length(sets)
#' head(lengths(sets))
#' @export
example_gene_sets <- function() {
  path <- system.file("extdata", "hallmark_pbmc_small.gmt", package = "exprflow")
  if (!nzchar(path)) stop("example gene set file 'extdata/hallmark_pbmc_small.gmt' not found", call. = FALSE)
  read_gmt(path)
}
