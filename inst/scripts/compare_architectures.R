# exprflow evaluation: latent_tokens (DDPM and flow) and state_mlp against the
# built-in baselines on a stratified quarter of held-out cells, on the example
# data or on PBMC3k (../shared/data/scrna_pbmc3k_seurat: 2,000 highly variable
# genes by variance of log-normalised expression, 8 Seurat cell types; the 14
# platelets are dropped, too few to hold a quarter out).
#   Rscript inst/scripts/compare_architectures.R [example|pbmc3k] [output-folder] [epochs] [data-folder]
# Takes ~10-30 minutes on 2 CPU cores.
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
  library(Matrix)
})
args <- commandArgs(trailingOnly = TRUE)
dataset <- if (length(args) >= 1) args[[1]] else "example"
out_dir <- if (length(args) >= 2) args[[2]] else paste0("exprflow-compare-", dataset)
epochs <- if (length(args) >= 3) as.integer(args[[3]]) else 60L
data_dir <- if (length(args) >= 4) args[[4]] else file.path("..", "shared", "data", "scrna_pbmc3k_seurat")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

# read_pbmc3k(): the script beside this one.
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "read_pbmc3k.R"))
sce <- switch(dataset, example = example_pbmc(), pbmc3k = {
  if (!dir.exists(data_dir)) stop("PBMC3k not found at ", data_dir)
  read_pbmc3k(data_dir)
}, stop("dataset must be 'example' or 'pbmc3k'"))
cat(sprintf("%s: %d genes x %d cells, %d cell types\n", dataset, nrow(sce), ncol(sce),
            length(unique(sce$cell_type))))

# patience: 15 for DDPM; flow models use the package default (no early stopping, see ?fit_expression_model).
token_settings <- list(architecture = "latent_tokens", epochs = epochs, batch_size = 64,
                       learning_rate = 1e-3, patience = 15, n_tokens = 16, token_dim = 64,
                       n_layers = 4, n_heads = 4, hidden = 512)
models <- list(latent_tokens_ddpm = token_settings)
extra <- list()
# The guard lets the same script measure a build from before objectives existed
# (the "before" column of issue 8's note): it then compares latent_tokens alone.
if ("objective" %in% names(formals(fit_expression_model))) {
  models$latent_tokens_flow <- utils::modifyList(token_settings, list(objective = "flow", patience = NULL))
  # Without the input skip: the composition that reproduces the pre-refactor model.
  models$latent_tokens_ddpm_noskip <- utils::modifyList(token_settings, list(input_skip = 0))
  # The state_mlp baseline with the same training settings as the token models.
  extra$baseline_args <- list(state_mlp = list(epochs = epochs, batch_size = 64, learning_rate = 1e-3))
}
comparison <- do.call(compare_models, c(list(sce, models = models, condition = "cell_type", test_fraction = 0.25,
                                             seed = 1, generate_args = list(guidance_scale = 2),
                                             noise_level = 0.5, verbose = TRUE), extra))
options(width = 150)
print(comparison)
write.csv(as.data.frame(unclass(comparison))[, 1:6], file.path(out_dir, "comparison.csv"), row.names = FALSE)
