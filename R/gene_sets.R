# Gene sets: the GMT reader and over-representation (hypergeometric) tests,
# used to interpret what a model's tokens encode.

#' Read gene sets from a GMT file
#'
#' The GMT format (used by MSigDB, Enrichr, GSEA) has one gene set per line,
#' tab-separated: the set's name, a description (often a URL), then its genes.
#' Empty lines are skipped; duplicated genes within a set are kept once.
#'
#' @param path Path to a `.gmt` file (may be gzip-compressed).
#' @param min_size,max_size Keep only sets with this many genes (after removing
#'   duplicates); the defaults keep every set.
#' @return A named list of character vectors, one per gene set, in file order.
#'   Errors name the line of a malformed file: fewer than three fields, an empty
#'   set name, a set without genes, or a set name used twice.
#' @examples
#' path <- tempfile(fileext = ".gmt")
#' writeLines(c("SET_A\tfirst set\tCD3D\tCD3E\tCD8A",
#'              "SET_B\thttps://example.org\tMS4A1\tCD79A"), path)
#' read_gmt(path)
#' @export
read_gmt <- function(path, min_size = 1, max_size = Inf) {
  .check_string(path, "path")
  if (!file.exists(path)) stop(sprintf("`path`: file '%s' does not exist", path), call. = FALSE)
  .check_count(min_size, "min_size", min = 1)
  if (!is.numeric(max_size) || length(max_size) != 1L || is.na(max_size) || max_size < min_size) {
    stop("`max_size` must be a single number >= `min_size`", call. = FALSE)
  }
  lines <- .read_text_lines(path)
  keep <- nzchar(trimws(lines))
  if (!any(keep)) stop(sprintf("`path`: '%s' holds no gene sets", path), call. = FALSE)
  line_numbers <- which(keep)
  fields <- strsplit(lines[keep], "\t", fixed = TRUE)
  malformed <- function(k, what) {
    stop(sprintf("`path`: line %d of '%s' is not valid GMT: %s", line_numbers[k], basename(path), what),
         call. = FALSE)
  }
  sets <- vector("list", length(fields))
  set_names <- character(length(fields))
  for (k in seq_along(fields)) {
    f <- trimws(fields[[k]])
    if (length(f) < 3L) {
      malformed(k, sprintf("%d tab-separated field(s); a set needs a name, a description and genes",
                           length(f)))
    }
    if (!nzchar(f[1])) malformed(k, "the set name is empty")
    genes <- unique(f[-(1:2)])
    genes <- genes[nzchar(genes)]
    if (length(genes) == 0L) malformed(k, sprintf("set '%s' has no genes", f[1]))
    set_names[k] <- f[1]
    sets[[k]] <- genes
  }
  dup <- duplicated(set_names)
  if (any(dup)) {
    k <- which(dup)[1]
    malformed(k, sprintf("set name '%s' was already used", set_names[k]))
  }
  names(sets) <- set_names
  sizes <- lengths(sets)
  sets[sizes >= min_size & sizes <= max_size]
}

#' Over-representation of gene lists in gene sets
#'
#' For each query list (e.g. the top genes of each model token) and each gene
#' set, a one-sided hypergeometric test of whether the list holds more of the
#' set's genes than expected by chance. The universe is `universe` (by default
#' every gene the lists were drawn from, e.g. the model's genes); sets and lists
#' are intersected with it first, so genes the model never saw do not count.
#' P-values are adjusted over all tests of one query with Benjamini-Hochberg.
#'
#' @param queries A character vector (one list) or a named list of character
#'   vectors.
#' @param gene_sets A named list of character vectors, e.g. from [read_gmt()].
#' @param universe Character vector of background genes.
#' @param min_overlap Report only tests with at least this many genes in common.
#' @param min_set_size Ignore sets with fewer genes than this in the universe.
#' @return A data.frame, one row per (query, set), sorted by query then p-value:
#'   `query`, `gene_set`, `overlap`, `query_size`, `set_size` (within the
#'   universe), `universe_size`, `expected`, `fold_enrichment`, `p_value`,
#'   `p_adjusted` (BH within the query), and `genes` (the overlap, comma-joined).
#' @examples
#' sets <- list(T_CELL = c("CD3D", "CD3E", "CD8A", "IL7R"), B_CELL = c("MS4A1", "CD79A", "CD79B"))
#' universe <- c(unlist(sets), paste0("G", 1:200))
#' gene_set_enrichment(c("CD3D", "CD3E", "IL7R", "G7"), sets, universe)
#' @export
gene_set_enrichment <- function(queries, gene_sets, universe, min_overlap = 1, min_set_size = 1) {
  if (is.character(queries)) queries <- list(query = queries)
  if (!is.list(queries) || length(queries) == 0L ||
      !all(vapply(queries, is.character, logical(1)))) {
    stop("`queries` must be a character vector or a non-empty list of character vectors", call. = FALSE)
  }
  if (is.null(names(queries))) names(queries) <- paste0("query", seq_along(queries))
  if (!is.list(gene_sets) || length(gene_sets) == 0L || is.null(names(gene_sets)) ||
      !all(vapply(gene_sets, is.character, logical(1)))) {
    stop("`gene_sets` must be a named, non-empty list of character vectors (see read_gmt())",
         call. = FALSE)
  }
  if (!is.character(universe) || length(universe) == 0L) {
    stop("`universe` must be a non-empty character vector of genes", call. = FALSE)
  }
  .check_count(min_overlap, "min_overlap", min = 0)
  .check_count(min_set_size, "min_set_size", min = 1)
  universe <- unique(universe[!is.na(universe)])
  N <- length(universe)
  sets <- lapply(gene_sets, function(s) intersect(s, universe))
  sets <- sets[lengths(sets) >= min_set_size]
  if (length(sets) == 0L) {
    stop("no gene set has at least `min_set_size` genes in `universe`; are the gene names of the ",
         "same kind (e.g. symbols) in both?", call. = FALSE)
  }
  rows <- lapply(names(queries), function(q) {
    query <- intersect(unique(queries[[q]]), universe)
    n <- length(query)
    overlaps <- lapply(sets, function(s) intersect(query, s))
    k <- lengths(overlaps)
    K <- lengths(sets)
    # P(X >= k) for X ~ Hypergeometric(K successes among N, n draws).
    p <- stats::phyper(k - 1L, K, N - K, n, lower.tail = FALSE)
    expected <- n * K / N
    out <- data.frame(query = q, gene_set = names(sets), overlap = k, query_size = n,
                      set_size = K, universe_size = N, expected = expected,
                      fold_enrichment = ifelse(expected > 0, k / expected, NA_real_),
                      p_value = p, p_adjusted = stats::p.adjust(p, method = "BH"),
                      genes = vapply(overlaps, paste, character(1), collapse = ","),
                      stringsAsFactors = FALSE)
    out <- out[out$overlap >= min_overlap, , drop = FALSE]
    out[order(out$p_value, -out$overlap), , drop = FALSE]
  })
  result <- do.call(rbind, rows)
  rownames(result) <- NULL
  result
}

# ---------------------------------------------------------------------------
# Gene sets as a model's structure (the "gene_sets" resource of
# architectures such as "pathway_tokens").

# Arguments of fit_expression_model()'s `...` that build resources rather
# than set the spec, by the resource they build.
.resource_arguments_of <- list(gene_sets = c("gene_sets", "min_set_genes", "n_modules"), grn = "grn")
.resource_arguments <- unlist(.resource_arguments_of, use.names = FALSE)
.resource_kinds <- c(gene_sets = "gene sets", grn = "a regulatory network")

# The resources an architecture is built from (expression_architectures()$resources).
.architecture_resources <- function(architecture) {
  table <- expression_architectures()
  needs <- table$resources[table$name == architecture]
  if (!length(needs) || !nzchar(needs)) character() else strsplit(needs, ",", fixed = TRUE)[[1]]
}

# Named list of resources for .cpp_model_create(): each list(values = matrix,
# row_names, column_names). `input`: .expression_input() of the training
# cells (NMF modules are learnt from them).
.model_resources <- function(architecture, args, input, seed, verbose = FALSE) {
  needs <- .architecture_resources(architecture)
  table <- expression_architectures()
  for (arg in names(args)) {
    resource <- names(.resource_arguments_of)[vapply(.resource_arguments_of, function(a) arg %in% a, logical(1))]
    if (!resource %in% needs) {
      users <- table$name[grepl(resource, table$resources, fixed = TRUE)]
      stop(sprintf("`%s` is used only by architectures built on %s (%s), not by '%s'", arg,
                   .resource_kinds[[resource]], paste(users, collapse = ", "), architecture), call. = FALSE)
    }
  }
  out <- list()
  if ("gene_sets" %in% needs) out$gene_sets <- .gene_sets_of(architecture, args, input, seed)
  if ("grn" %in% needs) {
    if (is.null(args$grn)) {
      stop(sprintf(paste0("architecture '%s' needs `grn`: a data.frame of regulator -> target gene pairs ",
                          "(see read_grn()) or the path of such a TSV file"), architecture), call. = FALSE)
    }
    out$grn <- .grn_resource(args$grn, input$genes)
  }
  if (isTRUE(verbose)) for (r in out) message(attr(r, "summary"))
  out
}

.gene_sets_of <- function(architecture, args, input, seed) {
  if (is.null(args$gene_sets)) {
    stop(sprintf(paste0("architecture '%s' needs `gene_sets`: a named list of gene vectors (e.g. ",
                        "read_gmt(path)), the path of a GMT file, or \"nmf\" (modules learnt from the data)"),
                 architecture), call. = FALSE)
  }
  min_genes <- .check_count(args$min_set_genes %||% 5, "min_set_genes", min = 1)
  if (identical(args$gene_sets, "nmf")) {
    n_modules <- .check_count(args$n_modules %||% 20, "n_modules", min = 1)
    modules <- .cpp_nmf_gene_modules(input$source, n_modules, seed)
    args$gene_sets <- lapply(seq_along(modules$row_names), function(k) input$genes[modules$values[k, ] > 0])
    names(args$gene_sets) <- modules$row_names
  } else if (!is.null(args$n_modules)) {
    stop("`n_modules` is used only with gene_sets = \"nmf\"", call. = FALSE)
  }
  .gene_set_resource(args$gene_sets, input$genes, min_genes)
}

# Gene sets (a named list of gene vectors, or a GMT path) as a sets x genes
# 0/1 matrix over `genes`, keeping the sets with at least `min_genes` of them.
.gene_set_resource <- function(gene_sets, genes, min_genes) {
  if (is.character(gene_sets) && length(gene_sets) == 1L && !is.list(gene_sets)) gene_sets <- read_gmt(gene_sets)
  valid <- is.list(gene_sets) && length(gene_sets) > 0L && !is.null(names(gene_sets)) &&
    all(nzchar(names(gene_sets))) && !anyDuplicated(names(gene_sets)) &&
    all(vapply(gene_sets, is.character, logical(1)))
  if (!valid) {
    stop(paste0("`gene_sets` must be a list of character vectors of gene names with unique, non-empty ",
                "names (e.g. from read_gmt()), or the path of a GMT file"), call. = FALSE)
  }
  members <- lapply(gene_sets, function(set) which(genes %in% set))
  sizes <- lengths(members)
  keep <- sizes >= min_genes
  if (!any(keep)) {
    stop(sprintf(paste0("`gene_sets`: none of the %d sets shares at least %d genes (`min_set_genes`) ",
                        "with the data's %d genes; the best shares %d, and %d of the data's genes are in ",
                        "any set. Are the gene names of the same kind (symbols vs Ensembl IDs)?"),
                 length(gene_sets), min_genes, length(genes), max(sizes),
                 length(unique(unlist(members)))), call. = FALSE)
  }
  values <- matrix(0, nrow = sum(keep), ncol = length(genes))
  for (k in seq_len(sum(keep))) values[k, members[keep][[k]]] <- 1
  covered <- sum(colSums(values) > 0)
  structure(list(values = values, row_names = names(gene_sets)[keep], column_names = genes),
            summary = sprintf(paste0("gene sets: %d of %d sets have at least %d of the data's genes; ",
                                     "%d of %d genes are in some set, %d in the residual token"),
                              sum(keep), length(gene_sets), min_genes, covered, length(genes),
                              length(genes) - covered))
}
