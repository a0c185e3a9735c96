# Kang 2018 IFN-beta PBMCs (../shared/data/perturb_kang2018_ifnb_pbmc: 1,000
# control + 1,000 stimulated cells, 9,015 genes) with cell types, which the
# file does not carry. Sourced by the perturbation scripts.
#
# How the cells are labelled: by transfer from PBMC3k (Seurat-tutorial
# labels, Platelets dropped). Both sets are log-normalised; the genes are
# those the two share among PBMC3k's 2,000 most variable, minus the 200 that
# IFN-beta moves most in Kang (perturbation_shift() of stimulated against
# control cells), so that the stimulation does not pull cells away from their
# type. evaluation_space() fits 30 principal components on PBMC3k over those
# genes; each Kang cell takes the majority type of its 15 nearest PBMC3k cells
# there (FNN kd-tree). PBMC3k's naive / memory CD4 T split rests on a few
# genes and does not transfer (16 memory against 499 naive control cells):
# both are labelled "CD4 T". Run alone, the script prints the type counts per
# condition (the two halves come from the same donors, so the proportions
# should agree; they do within a few cells but for NK, 43 / 67) and the
# markers' mean log expression per type. Also here: the held-out protocol's
# genes and types and its scoring (kang_protocol_cells(), score_kang_type()).
suppressPackageStartupMessages({
  library(exprflow)
  library(SingleCellExperiment)
})

read_kang2018 <- function(data_dir, pbmc3k_dir, k = 15, n_pcs = 30, ifn_genes = 200) {
  read_mtx <- function(dir) {
    counts <- methods::as(Matrix::readMM(gzfile(file.path(dir, "matrix.mtx.gz"))), "CsparseMatrix")
    rownames(counts) <- make.unique(readLines(file.path(dir, "genes.tsv")))
    colnames(counts) <- readLines(file.path(dir, "barcodes.tsv"))
    counts
  }
  kang <- read_mtx(data_dir)
  meta <- utils::read.csv(file.path(data_dir, "cell_metadata.csv"))
  meta <- meta[match(colnames(kang), meta$cell_id), ]
  stim <- ifelse(meta$condition == "ctrl", "ctrl", "stim")

  reference <- read_mtx(pbmc3k_dir)
  ref_meta <- utils::read.csv(file.path(pbmc3k_dir, "cell_metadata.csv"))
  ref_meta <- ref_meta[match(colnames(reference), ref_meta$barcode), ]
  keep <- ref_meta$cell_type != "Platelet"
  reference <- reference[, keep]
  ref_types <- ref_meta$cell_type[keep]

  log_reference <- log1p(t(t(reference) / Matrix::colSums(reference)) * 1e4)
  variance <- Matrix::rowMeans(log_reference^2) - Matrix::rowMeans(log_reference)^2
  hvg <- rownames(reference)[order(variance, decreasing = TRUE)[1:2000]]
  shift <- perturbation_shift(kang[, stim == "stim"], kang[, stim == "ctrl"])
  ifn <- names(sort(abs(shift), decreasing = TRUE))[seq_len(ifn_genes)]
  genes <- setdiff(intersect(hvg, rownames(kang)), ifn)

  space <- evaluation_space(reference[genes, ], n_genes = length(genes), n_pcs = n_pcs)
  neighbours <- FNN::get.knnx(project_cells(space, reference[genes, ]), project_cells(space, kang[genes, ]),
                              k = k)$nn.index
  votes <- matrix(ref_types[neighbours], ncol = k)
  cell_type <- apply(votes, 1, function(v) names(which.max(table(v))))
  cell_type[cell_type %in% c("Naive CD4 T", "Memory CD4 T")] <- "CD4 T"
  sce <- SingleCellExperiment(assays = list(counts = kang),
                              colData = S4Vectors::DataFrame(cell_type = cell_type, stim = stim,
                                                             row.names = colnames(kang)))
  metadata(sce)$labelling <- list(genes = genes, ifn_genes_left_out = ifn, k = k, n_pcs = n_pcs)
  sce
}

# The held-out protocol's cells: `sce` on its n_genes most variable genes
# (log-normalised, both conditions), and the cell types with at least 20
# cells in each condition (those held out in turn).
kang_protocol_cells <- function(sce, n_genes) {
  counts <- counts(sce)
  logs <- log1p(t(t(counts) / Matrix::colSums(counts)) * 1e4)
  means <- Matrix::rowMeans(logs)
  variance <- Matrix::rowMeans(logs^2) - means^2
  genes <- rownames(counts)[order(variance, decreasing = TRUE)[seq_len(min(n_genes, nrow(counts)))]]
  sizes <- table(sce$cell_type, sce$stim)
  list(sce = sce[genes, ], types = rownames(sizes)[sizes[, "ctrl"] >= 20 & sizes[, "stim"] >= 20])
}

# perturbation_metrics() of `predictions` (a named list, or NULL) of the
# held-out type's stimulated cells, beside the mean shift of the other types
# and its weighted form (the other types' responses weighed by how alike
# their control cells are to this type's, as the latent shift weighs them):
# the `wanted` metrics, long (prediction, metric, value).
score_kang_type <- function(sce, type, types, predictions, top_k, wanted) {
  cells <- function(type, stim) counts(sce)[, sce$cell_type == type & sce$stim == stim, drop = FALSE]
  others <- setdiff(types, type)
  stimulated <- lapply(others, cells, stim = "stim")
  controls <- lapply(others, cells, stim = "ctrl")
  scores <- perturbation_metrics(cells(type, "stim"), predictions, cells(type, "ctrl"), top_k = top_k,
                                 training_shift = perturbation_shift(stimulated, controls))
  weighted <- perturbation_metrics(cells(type, "stim"), NULL, cells(type, "ctrl"), top_k = top_k,
                                   training_shift = perturbation_shift(stimulated, controls,
                                                                       reference = cells(type, "ctrl")))
  weighted <- weighted[weighted$prediction == "mean_shift", ]
  weighted$prediction <- "mean_shift_weighted"
  scores <- rbind(scores, weighted)
  scores <- scores[scores$metric %in% wanted, c("prediction", "metric", "value")]
  one <- stats::reshape(scores, idvar = "prediction", timevar = "metric", direction = "wide")
  names(one) <- sub("^value\\.", "", names(one))
  message(type, " held out:\n", paste(utils::capture.output(print(one, row.names = FALSE, digits = 3)),
                                      collapse = "\n"))
  scores
}

if (sys.nframe() == 0L) {
  data <- file.path("..", "shared", "data")
  sce <- read_kang2018(file.path(data, "perturb_kang2018_ifnb_pbmc"), file.path(data, "scrna_pbmc3k_seurat"))
  print(table(sce$cell_type, sce$stim))
  log_counts <- log1p(t(t(counts(sce)) / Matrix::colSums(counts(sce))) * 1e4)
  markers <- intersect(c("CD3D", "CD8A", "MS4A1", "CD14", "LYZ", "FCGR3A", "NKG7", "GNLY", "FCER1A"),
                       rownames(log_counts))
  print(round(t(apply(log_counts[markers, ], 1, function(v) tapply(v, sce$cell_type, mean))), 2))
}
