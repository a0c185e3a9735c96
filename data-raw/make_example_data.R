# data-raw/make_example_data.R
#
# Builds inst/extdata/pbmc_small.rds, the small real example dataset shipped
# with exprflow (see example_pbmc() in R/example_data.R).
#
# Run from the repository root:
#   Rscript data-raw/make_example_data.R
#
# Input: ../shared/data/scrna_pbmc3k_seurat/ (relative to the repo root); see
# its SOURCE.md. PBMC3k (10x Genomics), Seurat-tutorial QC'd cells, integer UMI
# counts (13,714 genes x 2,638 cells) and the Seurat tutorial cell-type labels,
# obtained from the clustifyr package data.
#
# Subset:
#   * cells: about 1,200, stratified by cell_type with a fixed seed; types with
#     fewer than `rare_max` cells (DC 32, Platelet 14) are kept whole, the
#     others are sampled proportionally (round(n_type * fraction)).
#   * genes: the 2,000 genes with the largest variance of log-normalised
#     expression, log1p(count / library_size * 1e4), computed on ALL 2,638
#     cells (ties broken by original row position, so it is deterministic);
#     the selected genes keep the row order of the original matrix.
#   * cells whose library size over the selected genes is zero are dropped.
#
# Output: list(counts = dgCMatrix genes x cells, integer-valued,
#              cell_data = data.frame(cell_type, seurat_cluster,
#                                     nCount_RNA_full, row.names = barcodes))
# saved with saveRDS(..., compress = "xz").

suppressPackageStartupMessages(library(Matrix))

in_dir   <- file.path("..", "shared", "data", "scrna_pbmc3k_seurat")
out_file <- file.path("inst", "extdata", "pbmc_small.rds")

seed       <- 20240601L
n_target   <- 1200L   # approximate total number of cells
rare_max   <- 50L     # cell types with fewer cells than this are kept whole
n_genes    <- 2000L   # number of highly variable genes kept
scale_fact <- 1e4     # log-normalisation scale factor

stopifnot(dir.exists(in_dir), dir.exists(dirname(out_file)))

# ---------------------------------------------------------------- read input
counts <- Matrix::readMM(file.path(in_dir, "matrix.mtx.gz"))
counts <- as(counts, "CsparseMatrix")
genes <- readLines(file.path(in_dir, "genes.tsv"))
barcodes <- readLines(file.path(in_dir, "barcodes.tsv"))
meta <- utils::read.csv(file.path(in_dir, "cell_metadata.csv"),
                        stringsAsFactors = FALSE, check.names = FALSE)

stopifnot(nrow(counts) == length(genes), ncol(counts) == length(barcodes))
cat(sprintf("Full matrix: %d genes x %d cells, %d non-zeros\n",
            nrow(counts), ncol(counts), length(counts@x)))
stopifnot(all(counts@x == round(counts@x)), all(counts@x >= 0))

# Gene symbols must be unique.
n_dup <- sum(duplicated(genes))
if (n_dup > 0L) {
  cat(sprintf("Gene symbols: %d duplicated; applying make.unique()\n", n_dup))
  genes <- make.unique(genes)
} else {
  cat("Gene symbols: all unique (make.unique not needed)\n")
}
stopifnot(!anyDuplicated(barcodes))
rownames(counts) <- genes
colnames(counts) <- barcodes

# Align metadata to the matrix columns.
stopifnot(!anyDuplicated(meta$barcode), setequal(meta$barcode, barcodes))
meta <- meta[match(barcodes, meta$barcode), , drop = FALSE]
stopifnot(identical(meta$barcode, barcodes))

lib_full <- Matrix::colSums(counts)
stopifnot(all(lib_full == meta$nCount_RNA))

# ------------------------------------------------ gene selection (all cells)
# Log-normalise, then per-gene variance (sample variance, n - 1).
lognorm <- counts
lognorm@x <- log1p(lognorm@x / rep.int(lib_full, diff(lognorm@p)) * scale_fact)
n_cells <- ncol(lognorm)
g_mean <- Matrix::rowMeans(lognorm)
g_sq   <- Matrix::rowSums(lognorm^2)
g_var  <- (g_sq - n_cells * g_mean^2) / (n_cells - 1)
rm(lognorm)

ord <- order(-g_var, seq_along(g_var))      # deterministic tie-break
keep_genes <- sort(ord[seq_len(n_genes)])   # keep original gene order
cat(sprintf("Selected %d genes; variance cutoff %.4f (top gene: %s)\n",
            length(keep_genes), g_var[ord[n_genes]], genes[ord[1L]]))

# ------------------------------------------- stratified cell sampling
type_n <- table(meta$cell_type)
is_rare <- type_n < rare_max
n_rare <- sum(type_n[is_rare])
frac <- (n_target - n_rare) / sum(type_n[!is_rare])
type_take <- ifelse(is_rare, type_n, round(type_n * frac))
names(type_take) <- names(type_n)
cat(sprintf("Sampling fraction for non-rare types: %.4f\n", frac))

set.seed(seed)
keep_cells <- integer(0)
for (ct in sort(names(type_n))) {            # fixed iteration order
  idx <- which(meta$cell_type == ct)
  take <- type_take[[ct]]
  pick <- if (take >= length(idx)) idx else idx[sample.int(length(idx), take)]
  keep_cells <- c(keep_cells, pick)
}
keep_cells <- sort(keep_cells)               # keep original cell order

sub <- counts[keep_genes, keep_cells, drop = FALSE]
sub_meta <- meta[keep_cells, , drop = FALSE]

# Drop cells with zero library size over the selected genes.
lib_sub <- Matrix::colSums(sub)
zero <- lib_sub <= 0
cat(sprintf("Cells with zero library size over the %d genes: %d (dropped)\n",
            n_genes, sum(zero)))
if (any(zero)) {
  sub <- sub[, !zero, drop = FALSE]
  sub_meta <- sub_meta[!zero, , drop = FALSE]
  lib_sub <- lib_sub[!zero]
}
sub <- Matrix::drop0(sub)
stopifnot(is(sub, "dgCMatrix"), all(sub@x == round(sub@x)),
          all(Matrix::colSums(sub) > 0))

cell_data <- data.frame(
  cell_type       = as.character(sub_meta$cell_type),
  seurat_cluster  = as.integer(sub_meta$seurat_cluster),
  nCount_RNA_full = as.integer(sub_meta$nCount_RNA),
  row.names       = sub_meta$barcode,
  stringsAsFactors = FALSE
)
stopifnot(identical(rownames(cell_data), colnames(sub)))

# ------------------------------------------------------------------ save
saveRDS(list(counts = sub, cell_data = cell_data), out_file, compress = "xz")

cat(sprintf("\nSubset: %d genes x %d cells, %d non-zeros\n",
            nrow(sub), ncol(sub), length(sub@x)))
cat("Cells per type (subset / full):\n")
print(rbind(subset = table(factor(cell_data$cell_type, levels = names(type_n))),
            full = type_n))
cat(sprintf("Library size over selected genes: min %d, median %g, max %d\n",
            as.integer(min(lib_sub)), stats::median(lib_sub),
            as.integer(max(lib_sub))))
size <- file.size(out_file)
cat(sprintf("Wrote %s: %d bytes (%.2f MB)\n", out_file, size, size / 1024^2))
if (size > 2 * 1024^2) warning("example data file is larger than 2 MB")
