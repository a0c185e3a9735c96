# Regulatory networks: the TSV reader and the "grn" resource of architectures
# whose attention follows regulator -> target edges (grn_attention).

#' Read a gene regulatory network
#'
#' Reads a tab-separated edge list of regulator -> target gene pairs, such as
#' TRRUST (no header: TF, target, mode, PubMed IDs) or DoRothEA (header `tf`,
#' `confidence`, `target`, `mor`). A first line naming a regulator column
#' (`regulator`, `tf`, `source` or `from`, any case) and a `target` (or `to`)
#' column is a header; otherwise the first two columns are the regulator and
#' the target.
#'
#' @param path Path to a TSV file (may be gzip-compressed).
#' @return A data.frame with columns `regulator` and `target` (character),
#'   followed by the file's other columns; one row per line of the file.
#' @examples
#' path <- tempfile(fileext = ".tsv")
#' writeLines(c("STAT1\tIRF1\tActivation", "SPI1\tCD14\tActivation"), path)
#' read_grn(path)
#' @export
read_grn <- function(path) {
  .check_string(path, "path")
  if (!file.exists(path)) stop(sprintf("`path`: file '%s' does not exist", path), call. = FALSE)
  lines <- .read_text_lines(path)
  lines <- lines[nzchar(trimws(lines))]
  if (!length(lines)) stop(sprintf("`path`: '%s' holds no edges", path), call. = FALSE)
  first <- tolower(trimws(strsplit(lines[1], "\t", fixed = TRUE)[[1]]))
  regulator_col <- match(TRUE, first %in% c("regulator", "tf", "source", "from"))
  target_col <- match(TRUE, first %in% c("target", "to"))
  header <- !is.na(regulator_col) && !is.na(target_col)
  fields <- strsplit(if (header) lines[-1] else lines, "\t", fixed = TRUE)
  widths <- lengths(fields)
  if (any(widths < 2L)) {
    stop(sprintf("`path`: line %d of '%s' has fewer than 2 tab-separated fields", which(widths < 2L)[1] + header,
                 basename(path)), call. = FALSE)
  }
  width <- max(widths)
  table <- do.call(rbind, lapply(fields, function(f) c(f, rep(NA_character_, width - length(f)))))
  names <- if (header) c(first, rep("", max(0L, width - length(first))))[seq_len(width)] else character(width)
  names[!nzchar(names)] <- paste0("V", which(!nzchar(names)))
  if (!header) {
    regulator_col <- 1L
    target_col <- 2L
  }
  out <- data.frame(regulator = trimws(table[, regulator_col]), target = trimws(table[, target_col]),
                    stringsAsFactors = FALSE)
  rest <- setdiff(seq_len(width), c(regulator_col, target_col))
  for (k in rest) out[[names[k]]] <- table[, k]
  out
}

# The "grn" resource: a data.frame (or TSV path) of regulator -> target pairs
# as an edges x 2 matrix of 0-based gene indices over `genes`, keeping the
# distinct edges whose two genes are both in the data.
.grn_resource <- function(grn, genes) {
  if (is.character(grn) && length(grn) == 1L) grn <- read_grn(grn)
  if (!is.data.frame(grn)) {
    stop("`grn` must be a data.frame of regulator -> target gene pairs or the path of a TSV file", call. = FALSE)
  }
  columns <- tolower(names(grn))
  regulator <- match(TRUE, columns %in% c("regulator", "tf", "source", "from"))
  target <- match(TRUE, columns %in% c("target", "to"))
  if (is.na(regulator) || is.na(target)) {
    stop("`grn` needs a `regulator` (or `tf`, `source`) column and a `target` column", call. = FALSE)
  }
  from <- match(as.character(grn[[regulator]]), genes)
  to <- match(as.character(grn[[target]]), genes)
  keep <- !is.na(from) & !is.na(to) & from != to
  if (!any(keep)) {
    stop(sprintf(paste0("`grn`: none of its %d edges joins two different genes of the data's %d ",
                        "(%d of its regulators and %d of its targets are among them). Are the gene names of ",
                        "the same kind (symbols vs Ensembl IDs)?"),
                 nrow(grn), length(genes), length(unique(stats::na.omit(from))),
                 length(unique(stats::na.omit(to)))), call. = FALSE)
  }
  pairs <- unique(cbind(from[keep], to[keep]))
  structure(list(values = pairs - 1, row_names = character(), column_names = c("regulator", "target")),
            summary = sprintf(paste0("regulatory network: %d of %d edges join genes of the data (%d regulators, ",
                                     "%d targets); every gene also attends to itself"),
                              nrow(pairs), nrow(grn), length(unique(pairs[, 1])), length(unique(pairs[, 2]))))
}
