# Seconds of one fit_expression_model() call on the example data (1,200
# cells, 2,000 genes), for timing one build against another: install each
# into its own library and alternate the runs, e.g.
#
#   for lib in /tmp/lib_old /tmp/lib_new; do
#     R_LIBS=$lib Rscript inst/bench/fit_seconds.R set_tokens 2 [data-folder]
#   done
#
# Arguments: the architecture (default "set_tokens"), epochs (default 2; no
# early stopping, so every run trains as many steps) and the folder of
# ../shared/data (for grn_attention's TRRUST network and pathway_tokens'
# Hallmark gene sets). Prints the library, architecture, epochs and elapsed
# seconds (package loading excluded).
suppressMessages(library(exprflow))
args <- commandArgs(trailingOnly = TRUE)
architecture <- if (length(args) >= 1) args[[1]] else "set_tokens"
epochs <- if (length(args) >= 2) as.numeric(args[[2]]) else 2
data_dir <- if (length(args) >= 3) args[[3]] else file.path("..", "shared", "data")
resources <- switch(architecture,
  grn_attention = list(grn = file.path(data_dir, "grn_human", "trrust_rawdata.human.tsv")),
  pathway_tokens = list(gene_sets = file.path(data_dir, "genesets_msigdb", "human_hallmark_v2025.gmt")),
  list())
sce <- example_pbmc()
elapsed <- system.time(do.call(fit_expression_model, c(
  list(sce, condition = "cell_type", architecture = architecture,
       training = list(epochs = epochs, patience = 0)), resources)))[["elapsed"]]
cat(sprintf("%s %s epochs=%g %.1f s\n", .libPaths()[1], architecture, epochs, elapsed))
