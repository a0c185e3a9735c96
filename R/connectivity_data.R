# Connectivity data: the brain atlas readers, the shipped example, gene
# embeddings (the Gene2Vec text format and two derived embeddings), and the
# region-pair data that every connectivity model trains on.

# ---------------------------------------------------------------- brain data

.brain_files <- list(
  dk = list(expression = "ahba_expr_dk82_stable_r%s.csv", regions = "regions_dk82.csv",
            cortical = 68L, total = 82L, matrix = c("hcp_%s_dk68.csv", "hcp_%s_dk82_with_sctx.csv"),
            stability = c("0.6", "0.8")),
  schaefer100 = list(expression = "ahba_expr_s100sctx114_stable_r%s.csv", regions = "regions_s114.csv",
                     cortical = 100L, total = 114L, matrix = c("hcp_%s_s100.csv", "hcp_%s_s114_with_sctx.csv"),
                     stability = "0.6"),
  schaefer400 = list(expression = "ahba_expr_s400sctx414_stable_r%s.csv", regions = "regions_s414.csv",
                     cortical = 400L, total = 414L, matrix = c("hcp_%s_s400.csv", "hcp_%s_s414_with_sctx.csv"),
                     stability = "0.6")
)

#' Read regional brain gene expression, connectivity and coordinates
#'
#' Reads the Allen Human Brain Atlas (AHBA) expression averaged over brain
#' parcels, the Human Connectome Project (HCP) group connectivity of the same
#' parcels and the parcels' centroid coordinates, from the CSV layout of the
#' ENIGMA-derived data set (one folder per parcellation):
#' * `ahba_expr_<parc>_stable_r<stability>.csv`: header `label,<genes>`, one
#'   row per region, values in \[0, 1\], `NaN` for regions without an AHBA sample;
#' * `hcp_fc_*.csv` / `hcp_sc_*.csv`: headerless numeric region x region
#'   matrices, cortical only or with the 14 subcortical regions;
#' * `regions_*.csv`: `index, label, hemisphere, structure, x, y, z, ...`.
#'
#' Cortical regions come first in every file; with `subcortex = FALSE` only the
#' cortical regions (DK 68, Schaefer 100 / 400) are returned.
#'
#' @param dir The data folder: either the folder holding the parcellation
#'   sub-folders (`dk/`, `schaefer100/`, `schaefer400/`) or one of them.
#' @param parcellation `"dk"` (Desikan-Killiany), `"schaefer100"` or
#'   `"schaefer400"`.
#' @param connectivity `"fc"` (resting-state functional) or `"sc"` (structural,
#'   diffusion tractography).
#' @param subcortex Include the 14 subcortical regions.
#' @param stability Differential-stability threshold of the expression file:
#'   `"0.6"` (all parcellations) or `"0.8"` (DK only).
#' @return A list with `expression` (regions x genes numeric matrix; regions
#'   without samples are rows of `NA`), `connectivity` (region x region matrix),
#'   `coords` (regions x 3 matrix, columns `x, y, z`, mm), `regions` (labels),
#'   `regions_info` (the region table), `parcellation` and `modality`. Row and
#'   column names are the region labels.
#' @examples
#' \dontrun{
#' brain <- read_brain_data("path/to/brain_ahba_hcp", "dk", "fc")
#' dim(brain$expression)
#' }
#' @export
read_brain_data <- function(dir, parcellation = c("dk", "schaefer100", "schaefer400"),
                            connectivity = c("fc", "sc"), subcortex = FALSE, stability = "0.6") {
  .check_string(dir, "dir")
  parcellation <- match.arg(parcellation)
  connectivity <- match.arg(connectivity)
  if (!is.logical(subcortex) || length(subcortex) != 1L || is.na(subcortex)) {
    stop("`subcortex` must be TRUE or FALSE", call. = FALSE)
  }
  stability <- as.character(stability)
  files <- .brain_files[[parcellation]]
  if (length(stability) != 1L || !stability %in% files$stability) {
    stop(sprintf("`stability` must be one of %s for parcellation '%s'",
                 .first_few(files$stability), parcellation), call. = FALSE)
  }
  if (!dir.exists(dir)) stop(sprintf("`dir`: folder '%s' does not exist", dir), call. = FALSE)
  folder <- if (dir.exists(file.path(dir, parcellation))) file.path(dir, parcellation) else dir
  path_of <- function(name) {
    p <- file.path(folder, name)
    if (!file.exists(p)) {
      stop(sprintf("`dir`: file '%s' not found in '%s'", name, folder), call. = FALSE)
    }
    p
  }
  regions <- utils::read.csv(path_of(files$regions), stringsAsFactors = FALSE, check.names = FALSE)
  if (!all(c("label", "x", "y", "z") %in% names(regions))) {
    stop(sprintf("`dir`: '%s' needs columns label, x, y, z", files$regions), call. = FALSE)
  }
  expr <- utils::read.csv(path_of(sprintf(files$expression, stability)), check.names = FALSE,
                          stringsAsFactors = FALSE, na.strings = c("NA", "NaN", ""))
  if (!identical(names(expr)[1], "label") || ncol(expr) < 2L) {
    stop("`dir`: the expression file must start with a 'label' column followed by genes", call. = FALSE)
  }
  if (!identical(as.character(expr$label), as.character(regions$label))) {
    stop("`dir`: the region labels of the expression file and the region table differ", call. = FALSE)
  }
  n <- if (subcortex) files$total else files$cortical
  matrix_file <- sprintf(files$matrix[if (subcortex) 2L else 1L], connectivity)
  conn <- as.matrix(utils::read.csv(path_of(matrix_file), header = FALSE))
  if (nrow(conn) != n || ncol(conn) != n) {
    stop(sprintf("`dir`: '%s' is %d x %d, expected %d x %d", matrix_file, nrow(conn), ncol(conn), n, n),
         call. = FALSE)
  }
  keep <- seq_len(n)
  labels <- as.character(regions$label[keep])
  expression <- as.matrix(expr[keep, -1, drop = FALSE])
  storage.mode(expression) <- "double"
  expression[is.nan(expression)] <- NA_real_
  dimnames(expression) <- list(labels, names(expr)[-1])
  dimnames(conn) <- list(labels, labels)
  coords <- as.matrix(regions[keep, c("x", "y", "z")])
  dimnames(coords) <- list(labels, c("x", "y", "z"))
  list(expression = expression, connectivity = conn, coords = coords, regions = labels,
       regions_info = regions[keep, , drop = FALSE], parcellation = parcellation, modality = connectivity)
}

#' Small real brain example: Desikan-Killiany expression and connectivity
#'
#' Loads the brain data shipped with the package: Allen Human Brain Atlas
#' expression of the 121 most stable genes (differential stability r > 0.8)
#' averaged over the 82 Desikan-Killiany regions (68 cortical + 14
#' subcortical), the Human Connectome Project group functional and structural
#' connectivity of those regions, and the regions' centroid coordinates.
#'
#' @param connectivity `"fc"` (resting-state functional connectivity, values
#'   0-1.43, diagonal 0) or `"sc"` (structural connectivity weights from
#'   diffusion tractography, 70% zeros).
#' @param subcortex Include the 14 subcortical regions (82 regions); `FALSE`
#'   gives the 68 cortical regions.
#' @return A list like [read_brain_data()]: `expression` (regions x 121 genes,
#'   values in \[0, 1\]; the rows of `R_frontalpole` and `R_temporalpole` are
#'   `NA` because the atlas has no sample there), `connectivity`, `coords`
#'   (x, y, z in fsaverage / MNI mm), `regions`, `parcellation` and `modality`.
#' @details Made by `data-raw/make_brain_example.R` (package source repository)
#' from the ENIGMA-derived files `ahba_expr_dk82_stable_r0.8.csv`,
#' `hcp_fc_dk82_with_sctx.csv`, `hcp_sc_dk82_with_sctx.csv` and
#' `regions_dk82.csv`; values are stored unchanged.
#' @source Expression: GitHub `saratheriver/enigma-extra`,
#'   `ahba/allgenes_stable_r0.8.csv` (AHBA, Hawrylycz et al. 2012, mapped with
#'   abagen, Markello et al. 2021). Connectivity: the ENIGMA Toolbox (Larivière
#'   et al. 2021, BSD-3-Clause), HCP (Van Essen et al. 2013). Coordinates: mean
#'   vertex position of each parcel on the ENIGMA fsaverage5 surfaces
#'   (subcortical: the toolbox's subcortical surfaces).
#' @examples
#' brain <- example_brain("fc")
#' dim(brain$expression)
#' brain$connectivity[1:3, 1:3]
#' @export
example_brain <- function(connectivity = c("fc", "sc"), subcortex = TRUE) {
  connectivity <- match.arg(connectivity)
  if (!is.logical(subcortex) || length(subcortex) != 1L || is.na(subcortex)) {
    stop("`subcortex` must be TRUE or FALSE", call. = FALSE)
  }
  path <- system.file("extdata", "brain_dk_small.rds", package = "exprflow")
  if (!nzchar(path)) {
    stop("example data file 'extdata/brain_dk_small.rds' not found in the installed 'exprflow' ",
         "package; rebuild it with `Rscript data-raw/make_brain_example.R` and reinstall", call. = FALSE)
  }
  dat <- readRDS(path)
  keep <- if (subcortex) seq_along(dat$regions) else which(dat$structure == "cortex")
  list(expression = dat$expression[keep, , drop = FALSE],
       connectivity = dat[[connectivity]][keep, keep, drop = FALSE],
       coords = dat$coords[keep, , drop = FALSE], regions = dat$regions[keep],
       parcellation = "dk", modality = connectivity)
}

# ------------------------------------------------------------ gene embeddings

#' Read gene embeddings in the Gene2Vec text format
#'
#' Gene2Vec (Du et al. 2019) distributes its embeddings as text: an optional
#' first line `n_genes dim`, then one line per gene, `GENE v1 v2 ... vd`,
#' separated by spaces or tabs. Empty lines are skipped.
#'
#' @param path Path to the file (e.g. `gene2vec_dim_200_iter_9.txt`; may be
#'   gzip-compressed).
#' @return A numeric matrix, genes x dim, with the gene symbols as rownames.
#'   Malformed files are errors naming the line: a wrong number of values, a
#'   value that is not a number, a gene listed twice, a header that does not
#'   match the body; an empty file is an error too.
#' @examples
#' path <- tempfile(fileext = ".txt")
#' writeLines(c("2 3", "CD3D 0.1 0.2 0.3", "MS4A1 -0.5 0.0 1e-2"), path)
#' read_gene2vec(path)
#' @export
read_gene2vec <- function(path) {
  .check_string(path, "path")
  if (!file.exists(path)) stop(sprintf("`path`: file '%s' does not exist", path), call. = FALSE)
  lines <- .read_text_lines(path)
  line_no <- which(nzchar(trimws(lines)))
  if (!length(line_no)) stop(sprintf("`path`: '%s' is empty (no gene vectors)", path), call. = FALSE)
  fields <- strsplit(trimws(lines[line_no]), "[ \t]+")
  bad <- function(k, what) {
    stop(sprintf("`path`: line %d of '%s' is malformed: %s", line_no[k], basename(path), what), call. = FALSE)
  }
  header <- NULL
  first <- fields[[1]]
  if (length(first) == 2L && all(grepl("^[0-9]+$", first))) {
    header <- as.integer(first)
    fields <- fields[-1]
    line_no <- line_no[-1]
    if (!length(fields)) stop(sprintf("`path`: '%s' has a header but no gene vectors", path), call. = FALSE)
  }
  dim <- if (is.null(header)) length(fields[[1]]) - 1L else header[2]
  if (dim < 1L) bad(1L, "a gene needs at least one value")
  sizes <- lengths(fields) - 1L
  wrong <- which(sizes != dim)
  if (length(wrong)) {
    k <- wrong[1]
    bad(k, sprintf("%d value(s) for gene '%s', expected %d", sizes[k], fields[[k]][1], dim))
  }
  genes <- vapply(fields, `[`, "", 1L)
  text <- unlist(lapply(fields, `[`, -1L), use.names = FALSE)
  values <- .parse_decimal(text)
  if (anyNA(values)) {
    first <- which(is.na(values))[1]
    k <- (first - 1L) %/% dim + 1L
    bad(k, sprintf("'%s' for gene '%s' is not a finite decimal number", text[first], genes[k]))
  }
  if (anyDuplicated(genes)) {
    k <- which(duplicated(genes))[1]
    bad(k, sprintf("gene '%s' was already listed", genes[k]))
  }
  if (!is.null(header) && header[1] != length(genes)) {
    stop(sprintf("`path`: the header of '%s' announces %d genes but the file lists %d",
                 basename(path), header[1], length(genes)), call. = FALSE)
  }
  matrix(values, nrow = length(genes), ncol = dim, byrow = TRUE, dimnames = list(genes, NULL))
}

# Aligns an embedding (genes x dim) to `genes`: rows of NA for genes it lacks.
.align_embedding <- function(embedding, genes, what) {
  if (is.null(genes)) return(embedding)
  if (!is.character(genes) || anyNA(genes)) stop("`genes` must be a character vector of gene symbols", call. = FALSE)
  out <- matrix(NA_real_, length(genes), ncol(embedding), dimnames = list(genes, NULL))
  hit <- match(genes, rownames(embedding))
  out[!is.na(hit), ] <- embedding[hit[!is.na(hit)], , drop = FALSE]
  message(sprintf("%s: %d of %d genes have a vector; %d have none (rows of NA)", what,
                  sum(!is.na(hit)), length(genes), sum(is.na(hit))))
  out
}

# Top `dim` left singular vectors of a matrix, scaled by `power` of the
# singular values; columns past its rank are zero so the width is always `dim`.
.truncated_svd_embedding <- function(m, dim, power) {
  k <- min(dim, nrow(m), ncol(m))
  if (k >= min(nrow(m), ncol(m)) / 2 || min(nrow(m), ncol(m)) < 50) {
    s <- svd(as.matrix(m), nu = k, nv = 0)
    u <- s$u[, seq_len(k), drop = FALSE]
    d <- s$d[seq_len(k)]
  } else {
    s <- irlba::irlba(m, nv = k, nu = k)
    u <- s$u
    d <- s$d
  }
  d[d < 0] <- 0
  out <- matrix(0, nrow(m), dim)
  out[, seq_len(k)] <- sweep(u, 2L, d^power, `*`)
  # The sign of a singular vector is arbitrary; fix it so results are stable.
  flip <- sign(colSums(out)) < 0
  out[, flip] <- -out[, flip]
  out
}

#' Gene embeddings from single-cell co-expression
#'
#' A stand-in for Gene2Vec when its file is not at hand: genes that are
#' co-expressed across single cells get similar vectors. Counts are
#' library-size normalised and log-transformed, `log1p(count / total * 1e4)`;
#' the gene-gene Pearson correlation matrix `C` (over cells) is factorised by a
#' truncated SVD, `C ~ U D U'`, and gene vectors are the rows of
#' `U sqrt(D)` (so that their dot products approximate the correlations; every
#' row has norm <= 1).
#'
#' @param x A SingleCellExperiment (assay `assay`), a Seurat object, or a
#'   count matrix (dense or sparse), genes x cells with gene rownames.
#' @param dim Embedding width (200 as Gene2Vec). With fewer genes than `dim`
#'   the trailing columns are 0.
#' @param genes Optional gene symbols: the correlation is computed over these
#'   genes only (those present and expressed in `x`), and the result has one
#'   row per entry of `genes`, in that order; genes not covered are rows of
#'   `NA` (a message says how many). With `genes = NULL` all genes expressed in
#'   at least 3 cells are used, at most the 5,000 most variable (the
#'   correlation matrix grows with the square of the gene count).
#' @param assay Where the counts are: for a SingleCellExperiment, the assay
#'   (`NULL`: `"counts"`); for a Seurat object, the Seurat assay whose
#'   `counts` are read (`NULL`: `DefaultAssay(x)`). Matrices ignore it.
#' @return A numeric matrix genes x `dim` with gene rownames.
#' @examples
#' sce <- example_pbmc()
#' emb <- gene_embeddings_coexpression(sce, dim = 20, genes = c("CD3D", "CD3E", "MS4A1", "NOTAGENE"))
#' round(emb[, 1:4], 3)
#' @export
gene_embeddings_coexpression <- function(x, dim = 200, genes = NULL, assay = NULL) {
  dim <- .check_count(dim, "dim")
  counts <- .counts_and_covariates(x, assay, "x")$counts
  .check_gene_names(rownames(counts), "x")
  if (ncol(counts) < 3L) stop("`x` needs at least 3 cells", call. = FALSE)
  if (!is.null(genes) && (!is.character(genes) || anyNA(genes))) {
    stop("`genes` must be a character vector of gene symbols", call. = FALSE)
  }
  if (!methods::is(counts, "dgCMatrix")) {
    counts <- methods::as(methods::as(methods::as(Matrix::Matrix(counts, sparse = TRUE), "CsparseMatrix"),
                                      "generalMatrix"), "dMatrix")
  }
  totals <- Matrix::colSums(counts)
  counts <- counts[, totals > 0, drop = FALSE]
  totals <- totals[totals > 0]
  use <- if (is.null(genes)) rownames(counts) else intersect(unique(genes), rownames(counts))
  counts <- counts[use, , drop = FALSE]
  detected <- Matrix::rowSums(counts > 0)
  counts <- counts[detected >= if (is.null(genes)) 3L else 2L, , drop = FALSE]
  if (nrow(counts) < 2L) stop("`x`: fewer than 2 of the requested genes are expressed", call. = FALSE)
  logn <- .log_normalise(counts, 1e4, totals)
  if (is.null(genes) && nrow(logn) > 5000L) {
    m <- Matrix::rowMeans(logn)
    v <- Matrix::rowMeans(logn^2) - m^2
    keep <- sort(order(-v)[1:5000])
    message(sprintf("co-expression embedding: using the 5000 most variable of %d expressed genes", nrow(logn)))
    logn <- logn[keep, , drop = FALSE]
  }
  corr <- suppressWarnings(stats::cor(as.matrix(Matrix::t(logn))))
  corr[is.na(corr)] <- 0
  emb <- .truncated_svd_embedding(corr, dim, 0.5)
  rownames(emb) <- rownames(logn)
  .align_embedding(emb, genes, "co-expression embedding")
}

#' Gene embeddings from gene-set membership
#'
#' A second stand-in for Gene2Vec: genes that share pathways get similar
#' vectors (latent semantic analysis of the gene x set membership matrix).
#' Membership is weighted like tf-idf, by the inverse frequency of the set,
#' `log(1 + n_genes / set_size)`, so that small, specific sets count more than
#' large ones; each gene's row is scaled to unit length, the matrix is
#' factorised by a truncated SVD, `M ~ U D V'`, and gene vectors are the rows
#' of `U D` (dot products approximate the cosine similarity of two genes' set
#' memberships; rows have norm <= 1). The SVD runs over every gene of the sets,
#' so a gene's vector does not depend on `genes`.
#'
#' @param gene_sets A named list of character vectors, e.g. from [read_gmt()]
#'   (Reactome + Hallmark: `c(read_gmt(a), read_gmt(b))`).
#' @param genes Optional gene symbols: one row per entry, in that order; genes
#'   in no set are rows of `NA` (a message says how many).
#' @param dim Embedding width. Columns past the rank of the membership matrix
#'   are 0.
#' @return A numeric matrix genes x `dim` with gene rownames.
#' @examples
#' sets <- list(A = c("G1", "G2", "G3"), B = c("G2", "G3"), C = c("G4", "G5"))
#' gene_embeddings_gene_sets(sets, genes = c("G1", "G4", "G9"), dim = 2)
#' @export
gene_embeddings_gene_sets <- function(gene_sets, genes = NULL, dim = 200) {
  dim <- .check_count(dim, "dim")
  if (!is.list(gene_sets) || !length(gene_sets) || is.null(names(gene_sets)) ||
      !all(vapply(gene_sets, is.character, TRUE))) {
    stop("`gene_sets` must be a named, non-empty list of character vectors (see read_gmt())", call. = FALSE)
  }
  if (!is.null(genes) && (!is.character(genes) || anyNA(genes))) {
    stop("`genes` must be a character vector of gene symbols", call. = FALSE)
  }
  gene_sets <- lapply(gene_sets, function(s) unique(s[!is.na(s) & nzchar(s)]))
  gene_sets <- gene_sets[lengths(gene_sets) > 0L]
  if (!length(gene_sets)) stop("`gene_sets`: every set is empty", call. = FALSE)
  universe <- sort(unique(unlist(gene_sets, use.names = FALSE)))
  rows <- match(unlist(gene_sets, use.names = FALSE), universe)
  cols <- rep(seq_along(gene_sets), lengths(gene_sets))
  idf <- log1p(length(universe) / lengths(gene_sets))
  m <- Matrix::sparseMatrix(i = rows, j = cols, x = idf[cols], dims = c(length(universe), length(gene_sets)))
  norms <- sqrt(Matrix::rowSums(m^2))
  m <- Matrix::Diagonal(x = 1 / norms) %*% m
  emb <- .truncated_svd_embedding(m, dim, 1)
  rownames(emb) <- universe
  .align_embedding(emb, genes, "gene-set embedding")
}

# ------------------------------------------------------------- region pairs

# Checks the region-level inputs and returns them as plain matrices.
.check_region_inputs <- function(expression, connectivity, coords) {
  if (is.data.frame(expression)) expression <- as.matrix(expression)
  if (!is.matrix(expression) || !is.numeric(expression) || nrow(expression) < 2L || ncol(expression) < 1L) {
    stop("`expression` must be a numeric matrix, regions x genes, with at least 2 regions", call. = FALSE)
  }
  if (is.null(colnames(expression))) stop("`expression` needs gene names as colnames", call. = FALSE)
  if (anyDuplicated(colnames(expression))) {
    stop(sprintf("`expression` has duplicated gene names: %s",
                 .first_few(colnames(expression)[duplicated(colnames(expression))])), call. = FALSE)
  }
  if (any(is.infinite(expression))) stop("`expression` has infinite values", call. = FALSE)
  n <- nrow(expression)
  if (!is.null(connectivity)) {
    if (is.data.frame(connectivity)) connectivity <- as.matrix(connectivity)
    if (!is.matrix(connectivity) || !is.numeric(connectivity) || nrow(connectivity) != n ||
        ncol(connectivity) != n) {
      stop(sprintf("`connectivity` must be a numeric %d x %d matrix (regions x regions, as the rows of `expression`)",
                   n, n), call. = FALSE)
    }
    if (any(is.infinite(connectivity) | is.nan(connectivity))) {
      bad <- which(is.infinite(connectivity) | is.nan(connectivity), arr.ind = TRUE)[1, ]
      stop(sprintf(paste0("`connectivity` has %d infinite or NaN value(s) (first at [%d, %d]); use NA ",
                          "for pairs without a measurement"),
                   sum(is.infinite(connectivity) | is.nan(connectivity)), bad[1], bad[2]), call. = FALSE)
    }
  }
  if (!is.null(coords)) {
    if (is.data.frame(coords)) coords <- as.matrix(coords)
    if (!is.matrix(coords) || !is.numeric(coords) || nrow(coords) != n || ncol(coords) != 3L) {
      stop(sprintf("`coords` must be a numeric %d x 3 matrix (x, y, z per region) or NULL", n), call. = FALSE)
    }
    if (any(!is.finite(coords))) stop("`coords` has missing or infinite values", call. = FALSE)
  }
  list(expression = expression, connectivity = connectivity, coords = coords)
}

# Regions with complete expression; all-missing regions are dropped, partly
# missing ones are an error (imputing them from other regions would let the
# values of held-out regions shape the training data).
.kept_regions <- function(expression) {
  missing <- rowSums(is.na(expression))
  partial <- which(missing > 0 & missing < ncol(expression))
  if (length(partial)) {
    labels <- rownames(expression) %||% as.character(seq_len(nrow(expression)))
    stop(sprintf(paste0("`expression` has missing values in %d region(s) that are otherwise measured (%s); ",
                        "regions must be complete or entirely missing: drop or impute those genes first"),
                 length(partial), .first_few(labels[partial])), call. = FALSE)
  }
  kept <- unname(which(missing == 0))
  if (length(kept) < 2L) stop("`expression`: fewer than 2 regions have expression values", call. = FALSE)
  kept
}

# Per-gene min-max scaling to [0, 1] learned on `reference` rows; NULL when the
# data already lie in [0, 1] (the AHBA files are scaled this way).
.unit_scaling <- function(expression, reference) {
  x <- expression[reference, , drop = FALSE]
  if (all(x >= 0 & x <= 1)) return(NULL)
  lo <- apply(x, 2L, min)
  hi <- apply(x, 2L, max)
  list(min = lo, max = hi)
}

.apply_scaling <- function(expression, scaling) {
  if (is.null(scaling)) return(pmin(pmax(expression, 0), 1))
  span <- scaling$max - scaling$min
  span[span <= 0] <- 1
  out <- sweep(sweep(expression, 2L, scaling$min, `-`), 2L, span, `/`)
  out[] <- pmin(pmax(out, 0), 1)
  out
}

# Builds the region-pair data; `reference` (original region numbers) are the
# regions the [0, 1] scaling is learned on (all kept regions by default).
.region_pairs <- function(expression, connectivity, coords = NULL, reference = NULL) {
  inputs <- .check_region_inputs(expression, connectivity, coords)
  expression <- inputs$expression
  n <- nrow(expression)
  labels <- rownames(expression) %||% as.character(seq_len(n))
  kept <- .kept_regions(expression)
  ref <- if (is.null(reference)) kept else intersect(reference, kept)
  scaling <- .unit_scaling(expression, ref)
  scaled <- .apply_scaling(expression[kept, , drop = FALSE], scaling)
  dimnames(scaled) <- list(labels[kept], colnames(expression))
  m <- length(kept)
  grid <- expand.grid(i = seq_len(m), j = seq_len(m))
  grid <- grid[grid$i != grid$j, , drop = FALSE]
  target <- if (is.null(inputs$connectivity)) rep(NA_real_, nrow(grid)) else
    inputs$connectivity[cbind(kept[grid$i], kept[grid$j])]
  ok <- if (is.null(inputs$connectivity)) rep(TRUE, nrow(grid)) else !is.na(target)
  structure(list(
    expression = scaled,
    coords = if (is.null(inputs$coords)) NULL else inputs$coords[kept, , drop = FALSE],
    i = as.integer(grid$i[ok]), j = as.integer(grid$j[ok]), target = as.numeric(target[ok]),
    region_index = kept, n_regions = n, labels = labels, genes = colnames(expression),
    scaling = scaling, dropped = setdiff(seq_len(n), kept)
  ), class = "exprflow_region_pairs")
}

#' Region-pair data for connectivity models
#'
#' Turns regional expression and a connectivity matrix into the data the
#' connectivity models train on: every ordered pair of regions `(i, j)`,
#' `i != j`, in both directions, with target `connectivity[i, j]`.
#'
#' * Regions whose expression is entirely missing (e.g. no atlas sample) are
#'   dropped; `region_index` maps each kept row back to the original region
#'   number. A region with only some genes missing is an error: imputing it
#'   from other regions would let one region's data shape another's, so drop
#'   or impute those genes beforehand.
#' * Pairs whose target is `NA` are dropped.
#' * Expression is used as is when it already lies in \[0, 1\] (the AHBA
#'   values do); otherwise every gene is min-max scaled to \[0, 1\] over the
#'   kept regions. ([fit_connectivity()] learns that scaling on its training
#'   regions only and clamps other regions into \[0, 1\].)
#'
#' @param expression Numeric matrix, regions x genes, gene colnames
#'   (rownames are used as region labels when present).
#' @param connectivity Numeric region x region matrix in the same region order.
#' @param coords Optional numeric regions x 3 matrix of region coordinates.
#' @return An object of class `exprflow_region_pairs`: a list with
#'   `expression` (kept regions x genes, scaled), `coords` (kept regions or
#'   `NULL`), `i`, `j` (1-based rows of the kept regions), `target`,
#'   `region_index` (original number of each kept row), `n_regions`, `labels`
#'   (original labels), `genes`, `scaling` (`NULL` or per-gene `min`/`max`) and
#'   `dropped` (original numbers of the dropped regions). `as.data.frame()`
#'   gives one row per pair with original region numbers and labels.
#' @seealso [pairs_to_matrix()] to map pair values back to a region x region
#'   matrix.
#' @examples
#' brain <- example_brain("fc")
#' pairs <- connectivity_pairs(brain$expression, brain$connectivity, brain$coords)
#' pairs
#' head(as.data.frame(pairs))
#' @export
connectivity_pairs <- function(expression, connectivity, coords = NULL) {
  if (missing(connectivity) || is.null(connectivity)) {
    stop("`connectivity` must be a region x region matrix", call. = FALSE)
  }
  .region_pairs(expression, connectivity, coords)
}

#' @export
print.exprflow_region_pairs <- function(x, ...) {
  cat("<exprflow_region_pairs>\n")
  cat(sprintf("  regions : %d kept of %d%s\n", length(x$region_index), x$n_regions,
              if (length(x$dropped)) paste0(" (dropped: ", .first_few(x$labels[x$dropped]), ")") else ""))
  cat(sprintf("  genes   : %d%s\n", length(x$genes), if (is.null(x$scaling)) "" else " (min-max scaled)"))
  cat(sprintf("  pairs   : %d ordered pairs (i != j, both directions)\n", length(x$i)))
  cat(sprintf("  coords  : %s\n", if (is.null(x$coords)) "none" else "x, y, z"))
  invisible(x)
}

#' @export
as.data.frame.exprflow_region_pairs <- function(x, row.names = NULL, optional = FALSE, ...) {
  i <- x$region_index[x$i]
  j <- x$region_index[x$j]
  data.frame(i = i, j = j, label_i = x$labels[i], label_j = x$labels[j], target = x$target,
             row.names = row.names, stringsAsFactors = FALSE)
}

#' Map pair values back to a region x region matrix
#'
#' @param pairs An `exprflow_region_pairs` object (from
#'   [connectivity_pairs()]).
#' @param values One value per pair of `pairs` (e.g. predictions), or, when
#'   `i` and `j` are given, one value per `(i, j)`.
#' @param i,j Optional 1-based rows of the kept regions (as `pairs$i`,
#'   `pairs$j`); default: the pairs of `pairs`.
#' @return A numeric matrix over the ORIGINAL regions (`pairs$n_regions`
#'   square, region labels as dimnames), `NA` on the diagonal, at dropped
#'   regions and at pairs without a value.
#' @examples
#' brain <- example_brain("fc")
#' pairs <- connectivity_pairs(brain$expression, brain$connectivity)
#' m <- pairs_to_matrix(pairs, pairs$target)
#' all.equal(m[!is.na(m)], brain$connectivity[!is.na(m)])
#' @export
pairs_to_matrix <- function(pairs, values, i = NULL, j = NULL) {
  if (!inherits(pairs, "exprflow_region_pairs")) {
    stop("`pairs` must be an exprflow_region_pairs object (from connectivity_pairs())", call. = FALSE)
  }
  if (is.null(i) != is.null(j)) stop("give both `i` and `j` or neither", call. = FALSE)
  if (is.null(i)) {
    i <- pairs$i
    j <- pairs$j
  }
  if (!is.numeric(values) || length(values) != length(i)) {
    stop(sprintf("`values` must be numeric with one value per pair (%d)", length(i)), call. = FALSE)
  }
  .values_to_matrix(values, pairs$region_index[i], pairs$region_index[j], pairs$n_regions, pairs$labels)
}

.values_to_matrix <- function(values, i, j, n, labels) {
  out <- matrix(NA_real_, n, n, dimnames = list(labels, labels))
  out[cbind(i, j)] <- values
  diag(out) <- NA_real_
  out
}
