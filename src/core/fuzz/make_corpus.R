# Regenerates the seed corpora of the model-file fuzz targets from tiny real
# models (run from the repository root after `make install`):
#   R_LIBS=.Rlib Rscript src/core/fuzz/make_corpus.R
# Model files: whole files (fuzz_model_file) and their payloads without the
# 24-byte envelope header (fuzz_model_payload, which seals each input itself).
suppressPackageStartupMessages(library(exprflow))
sce <- example_pbmc()[1:30, 1:200]
dir_file <- "src/core/fuzz/corpus/fuzz_model_file"
dir_payload <- "src/core/fuzz/corpus/fuzz_model_payload"
write_both <- function(bytes, name) {
  writeBin(bytes, file.path(dir_file, paste0(name, ".exprflow")))
  writeBin(bytes[-(1:24)], file.path(dir_payload, paste0(name, ".bundle")))
}
fits <- list(
  latent_tokens = list(architecture = "latent_tokens", n_tokens = 2, token_dim = 4, n_layers = 1, n_heads = 1, hidden = 8),
  state_mlp = list(architecture = "state_mlp", hidden = 8, n_layers = 1),
  vae = list(architecture = "vae"),
  latent_mlp = list(architecture = "latent_mlp", hidden = 8, n_layers = 1, training = list(vae_epochs = 1)))
for (name in names(fits)) {
  args <- c(list(x = sce, condition = "cell_type", epochs = 1, verbose = FALSE), fits[[name]])
  if (name %in% c("vae", "latent_mlp")) args <- c(args, list(latent_dim = 4, vae_hidden = 8, vae_input_pcs = 4))
  m <- tryCatch(do.call(fit_expression_model, args), error = function(e) { message(name, ": ", conditionMessage(e)); NULL })
  if (is.null(m)) next
  write_both(m$state$raw, name)
}
brain <- example_brain("fc")
genes <- colnames(brain$expression)[1:20]
fit <- fit_connectivity(brain$expression[, genes], brain$connectivity, epochs = 1, d_model = 4, n_layers = 1, head_hidden = "8", mlp_ratio = 1,
                        n_heads = 1, verbose = FALSE)
writeBin(fit$state$raw[-(1:24)], file.path(dir_payload, "connectivity.bundle"))
bil <- fit_connectivity(brain$expression[, genes], brain$connectivity, model = "bilinear", verbose = FALSE, epochs = 2)
writeBin(bil$state$raw[-(1:24)], file.path(dir_payload, "bilinear.bundle"))
