# The SCODE time courses in ../shared/data/timecourse_scode_tf100 (100
# transcription factors, log expression as SCODE provides it, not counts) as
# a SingleCellExperiment: assay "logcounts", colData time_label (as given)
# and, where the labels are numbers (hours), time. Sourced by
# compare_dynamics.R.
suppressPackageStartupMessages(library(SingleCellExperiment))

read_time_course <- function(data_dir, name = "chu2016_hESC_to_DE") {
  expression <- utils::read.delim(file.path(data_dir, paste0(name, "_expr_tf100.tsv")), check.names = FALSE)
  cells <- utils::read.delim(file.path(data_dir, paste0(name, "_cells.tsv")), stringsAsFactors = FALSE)
  values <- as.matrix(expression[, -1])
  rownames(values) <- expression$gene
  cells <- cells[match(colnames(values), cells$cell_id), ]
  time <- suppressWarnings(as.numeric(cells$time_label))
  col_data <- S4Vectors::DataFrame(time_label = cells$time_label, pseudotime = cells$pseudotime_scode,
                                   row.names = cells$cell_id)
  if (!anyNA(time)) col_data$time <- time
  SingleCellExperiment(assays = list(logcounts = values), colData = col_data)
}
