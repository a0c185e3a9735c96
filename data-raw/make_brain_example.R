# data-raw/make_brain_example.R
#
# Builds inst/extdata/brain_dk_small.rds, the brain example shipped with
# exprflow (see example_brain() in R/connectivity_data.R).
#
# Run from the repository root:
#   Rscript data-raw/make_brain_example.R
#
# Input: ../shared/data/brain_ahba_hcp/dk/ (see its SOURCE.md):
#   ahba_expr_dk82_stable_r0.8.csv  AHBA expression, 82 DK regions x 121 genes (SOURCE.md says 120)
#                                   (differential stability r > 0.8), [0, 1],
#                                   NaN rows for R_frontalpole, R_temporalpole
#   hcp_fc_dk82_with_sctx.csv       HCP functional connectivity, 82 x 82
#   hcp_sc_dk82_with_sctx.csv       HCP structural connectivity, 82 x 82
#   regions_dk82.csv                labels, hemisphere, structure, x, y, z
#
# Nothing is transformed: all 82 regions and all 121 genes are kept, values
# unchanged (NaN -> NA). Output: list(expression, fc, sc, coords, regions,
# hemisphere, structure), saved with xz compression.

in_dir <- file.path("..", "shared", "data", "brain_ahba_hcp", "dk")
out_file <- file.path("inst", "extdata", "brain_dk_small.rds")
stopifnot(dir.exists(in_dir), dir.exists(dirname(out_file)))

regions <- utils::read.csv(file.path(in_dir, "regions_dk82.csv"), stringsAsFactors = FALSE)
expr <- utils::read.csv(file.path(in_dir, "ahba_expr_dk82_stable_r0.8.csv"), check.names = FALSE,
                        na.strings = c("NaN", "NA"), stringsAsFactors = FALSE)
stopifnot(identical(expr$label, regions$label), nrow(regions) == 82L)
labels <- regions$label
expression <- as.matrix(expr[, -1])
dimnames(expression) <- list(labels, names(expr)[-1])
read_matrix <- function(name) {
  m <- as.matrix(utils::read.csv(file.path(in_dir, name), header = FALSE))
  stopifnot(dim(m) == c(82L, 82L))
  dimnames(m) <- list(labels, labels)
  m
}
fc <- read_matrix("hcp_fc_dk82_with_sctx.csv")
sc <- read_matrix("hcp_sc_dk82_with_sctx.csv")
coords <- as.matrix(regions[, c("x", "y", "z")])
dimnames(coords) <- list(labels, c("x", "y", "z"))

cat(sprintf("expression: %d regions x %d genes; all-NA rows: %s\n", nrow(expression), ncol(expression),
            paste(labels[rowSums(is.na(expression)) == ncol(expression)], collapse = ", ")))
saveRDS(list(expression = expression, fc = fc, sc = sc, coords = coords, regions = labels,
             hemisphere = regions$hemisphere, structure = regions$structure),
        out_file, compress = "xz")
size <- file.size(out_file)
cat(sprintf("Wrote %s: %d bytes (%.0f KB)\n", out_file, size, size / 1024))
stopifnot(size < 500 * 1024)
