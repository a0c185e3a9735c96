# Builds inst/extdata/hallmark_pbmc_small.gmt: the MSigDB Hallmark sets
# restricted to the 2,000 genes of the example data (example_pbmc()), keeping
# the sets with at least 5 of them. Run from the repository root, with the
# package installed and ../shared/data beside the repository:
#   Rscript data-raw/make_example_gene_sets.R
suppressPackageStartupMessages(library(exprflow))
source_path <- file.path("..", "shared", "data", "genesets_msigdb", "human_hallmark_v2025.gmt")
stopifnot(file.exists(source_path))
genes <- rownames(example_pbmc())
lines <- readLines(source_path)
fields <- strsplit(lines[nzchar(lines)], "\t", fixed = TRUE)
out <- character()
for (f in fields) {
  members <- f[-(1:2)][f[-(1:2)] %in% genes]
  if (length(members) >= 5L) out <- c(out, paste(c(f[1], f[2], members), collapse = "\t"))
}
writeLines(out, file.path("inst", "extdata", "hallmark_pbmc_small.gmt"))
cat(length(out), "sets written\n")
