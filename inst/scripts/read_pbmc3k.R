# PBMC3k as the comparison scripts use it: raw counts of the 2,000 most
# variable genes (of log-normalised expression), cell types from the Seurat
# tutorial's annotation, Platelets dropped. Sourced by compare_architectures.R
# and compare_latent.R.
suppressPackageStartupMessages(library(SingleCellExperiment))

read_pbmc3k <- function(data_dir) {
  counts <- as(Matrix::readMM(gzfile(file.path(data_dir, "matrix.mtx.gz"))), "CsparseMatrix")
  rownames(counts) <- make.unique(readLines(file.path(data_dir, "genes.tsv")))
  colnames(counts) <- readLines(file.path(data_dir, "barcodes.tsv"))
  meta <- utils::read.csv(file.path(data_dir, "cell_metadata.csv"))
  meta <- meta[match(colnames(counts), meta$barcode), ]
  keep <- !meta$cell_type %in% c("Platelet")   # 14 cells: too few to hold out a quarter of
  counts <- counts[, keep]
  meta <- meta[keep, ]
  normalised <- log1p(t(t(counts) / Matrix::colSums(counts)) * 1e4)
  mean_x <- Matrix::rowMeans(normalised)
  variance <- Matrix::rowMeans(normalised^2) - mean_x^2
  hvg <- order(variance, decreasing = TRUE)[1:2000]
  sce <- SingleCellExperiment(assays = list(counts = counts[hvg, ]),
                              colData = S4Vectors::DataFrame(cell_type = meta$cell_type))
  sce
}
