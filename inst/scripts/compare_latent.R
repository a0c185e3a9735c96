# Count-VAE latent models against the package's baselines on held-out cells
# (issue 9's acceptance): compare_models() with package defaults, several
# seeds (each its own stratified 25% split), mean and sd per metric.
#
#   Rscript inst/scripts/compare_latent.R [example|pbmc3k|kang_control] [output-folder] [seeds] [models] [data-folder] [settings] [training]
#
# kang_control: the control cells of Kang 2018 as perturbation_kang.R reads
# them (2,000 HVGs, cell types transferred from PBMC3k, types with 20 cells
# or more in each condition), from the Kang folder beside the PBMC3k data
# folder.
# seeds: e.g. "1,2,3"; models: comma-separated architectures (default
# "vae,latent_mlp"); settings: changes from the package defaults given to
# every model, e.g. "epochs=30,batch_size=64" (none by default); training:
# further training settings given to every model as `training =`, e.g.
# "kl_weight=2,ema_decay=0.99" (none by default); architectures built on gene sets (pathway_tokens) get
# MSigDB Hallmark from ../shared/data/genesets_msigdb, those built on a
# regulatory network (grn_attention) TRRUST from ../shared/data/grn_human. PBMC3k is read as in compare_architectures.R (2,000 HVGs,
# Platelets dropped). One CSV per seed is written as soon as it is done, then
# summary.csv (mean, sd over seeds).
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})
args <- commandArgs(trailingOnly = TRUE)
dataset <- if (length(args) >= 1) args[[1]] else "example"
out_dir <- if (length(args) >= 2) args[[2]] else paste0("exprflow-latent-", dataset)
seeds <- if (length(args) >= 3) as.integer(strsplit(args[[3]], ",")[[1]]) else 1:3
architectures <- if (length(args) >= 4) strsplit(args[[4]], ",")[[1]] else c("vae", "latent_mlp")
data_dir <- if (length(args) >= 5) args[[5]] else file.path("..", "shared", "data", "scrna_pbmc3k_seurat")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

# read_pbmc3k() and settings_argument(): the scripts beside this one.
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "read_pbmc3k.R"))
source(file.path(script_dir, "script_settings.R"))
settings <- settings_argument(if (length(args) >= 6) args[[6]])
training <- settings_argument(if (length(args) >= 7) args[[7]])
kang_control <- function() {
  source(file.path(script_dir, "read_kang2018.R"))
  protocol <- kang_protocol_cells(read_kang2018(file.path(dirname(data_dir), "perturb_kang2018_ifnb_pbmc"), data_dir),
                                  2000L)
  sce <- protocol$sce[, protocol$sce$stim == "ctrl" & protocol$sce$cell_type %in% protocol$types]
  sce$cell_type <- droplevels(factor(sce$cell_type))
  sce
}
sce <- switch(dataset, example = example_pbmc(), pbmc3k = read_pbmc3k(data_dir), kang_control = kang_control(),
              stop("dataset must be 'example', 'pbmc3k' or 'kang_control'"))
shown_settings <- function(s) if (length(s)) paste(names(s), s, sep = "=", collapse = ", ") else "defaults"
cat(sprintf("%s: %d genes x %d cells; models %s; seeds %s; settings %s; training %s\n", dataset, nrow(sce), ncol(sce),
            paste(architectures, collapse = ", "), paste(seeds, collapse = ", "), shown_settings(settings),
            shown_settings(training)))

hallmark <- file.path(dirname(data_dir), "genesets_msigdb", "human_hallmark_v2025.gmt")
trrust <- file.path(dirname(data_dir), "grn_human", "trrust_rawdata.human.tsv")
model_args <- function(a) {
  needs <- expression_architectures()$resources[expression_architectures()$name == a]
  c(list(architecture = a), settings, if (length(training)) list(training = training),
    if (grepl("gene_sets", needs)) list(gene_sets = hallmark),
    if (grepl("grn", needs)) list(grn = trrust))
}
models <- stats::setNames(lapply(architectures, model_args), architectures)
frames <- list()
for (seed in seeds) {
  comparison <- compare_models(sce, models = models, condition = "cell_type", test_fraction = 0.25, seed = seed,
                               baselines = c("independent_nb", "nb_copula", "pca_gaussian", "training_cells"),
                               verbose = TRUE)
  frame <- as.data.frame(unclass(comparison))[, c("model", "task", "metric", "value")]
  frame$seed <- seed
  utils::write.csv(frame, file.path(out_dir, sprintf("seed_%d.csv", seed)), row.names = FALSE)
  frames[[length(frames) + 1L]] <- frame
}
all <- do.call(rbind, frames)
summary <- stats::aggregate(value ~ model + task + metric, data = all,
                            FUN = function(v) c(mean = mean(v), sd = if (length(v) > 1) stats::sd(v) else NA))
summary <- do.call(data.frame, summary)
utils::write.csv(summary, file.path(out_dir, "summary.csv"), row.names = FALSE)
wanted <- c("mmd_rbf", "energy_distance", "knn_auc", "condition_accuracy", "correlation_matrix_distance",
            "knn_accuracy", "kmeans_ari",
            "heldout_log_likelihood", "fit_seconds", "fit_peak_mb", "generate_seconds")
shown <- summary[summary$metric %in% wanted, ]
shown$text <- ifelse(is.na(shown$value.sd), formatC(shown$value.mean, digits = 4, format = "g"),
                     sprintf("%s (%s)", formatC(shown$value.mean, digits = 4, format = "g"),
                             formatC(shown$value.sd, digits = 2, format = "g")))
wide <- stats::reshape(shown[, c("model", "metric", "text")], idvar = "metric", timevar = "model", direction = "wide")
names(wide) <- sub("^text\\.", "", names(wide))
print(wide[match(intersect(wanted, wide$metric), wide$metric), ], row.names = FALSE)
