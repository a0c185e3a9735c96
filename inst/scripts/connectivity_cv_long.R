# inst/scripts/connectivity_cv_long.R
#
# The cross-attention model trained longer than in connectivity_cv.R (which
# runs every model at a size the 2-core CPU affords for all of them): the
# cross-attention model first has to learn to match the same gene across the
# two regions and sits on a plateau before it does, so few epochs understate
# it. Same data and folds (DK 68 cortical regions, 121 genes, 5 random region
# folds, seed 1); variants: the seed design (mean pooling), and the extension
# with self-attention among the queries and a spatial CLS token read out by
# CLS pooling; plus the permuted null of the seed design.
#   R_LIBS=.Rlib Rscript inst/scripts/connectivity_cv_long.R [data_dir] [epochs]
suppressPackageStartupMessages(library(exprflow))
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else file.path("..", "shared", "data")
epochs <- if (length(args) >= 2) as.integer(args[2]) else 30L
started <- Sys.time()
size <- list(d_model = 32, n_layers = 2, n_heads = 2, mlp_ratio = 2, head_hidden = "64,32")
variants <- list(
  "cross_attention (seed: mean pooling)" = list(model = "cross_attention", args = size, null = TRUE),
  "cross_attention + query self-attention, spatial CLS" =
    list(model = "cross_attention", args = c(size, list(query_self_attention = 1, cls = "spatial", pooling = "cls")),
         null = FALSE))
cat(sprintf("DK 68 cortical, 121 genes, 5 random region folds; %s; epochs %d, batch 128, lr 1e-3, patience 8\n",
            paste(names(size), unlist(size), sep = " = ", collapse = ", "), epochs))
rows <- list()
for (modality in c("fc", "sc")) {
  brain <- read_brain_data(file.path(data_dir, "brain_ahba_hcp"), "dk", modality, subcortex = FALSE, stability = "0.8")
  for (name in names(variants)) {
    v <- variants[[name]]
    cv <- cross_validate_connectivity(brain$expression, brain$connectivity, brain$coords, models = v$model,
                                      scheme = "random", folds = 5, permuted_null = v$null, seed = 1,
                                      model_args = stats::setNames(list(v$args), v$model),
                                      test_pairs = c("any", "both"), epochs = epochs, batch_size = 128,
                                      learning_rate = 1e-3, patience = 8)
    cv <- as.data.frame(unclass(cv))
    for (is_null in unique(cv$null)) {
      for (pairs in c("any", "both")) {
        s <- cv[cv$null == is_null & cv$test_pairs == pairs, ]
        rows[[length(rows) + 1]] <- data.frame(
          modality = toupper(modality), model = paste0(name, if (is_null) " (permuted null)" else ""),
          test_pairs = pairs, pearson = sprintf("%.3f \u00b1 %.3f", mean(s$pearson), stats::sd(s$pearson)),
          train_s_per_fold = round(mean(s$train_seconds), 1))
      }
    }
    cat(sprintf("done %s %s (%.1f min)\n", modality, name, as.numeric(difftime(Sys.time(), started, units = "mins"))))
  }
}
print(do.call(rbind, rows), row.names = FALSE, right = FALSE)
