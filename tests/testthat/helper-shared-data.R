# The real public datasets beside the repository (../shared/data) are used by
# some tests; on a user's machine they are absent and those tests skip.
shared_data_dir <- function(...) {
  candidates <- c(Sys.getenv("EXPRFLOW_SHARED_DATA"),
                  file.path(getwd(), "..", "..", "..", "shared", "data"),
                  file.path(getwd(), "..", "shared", "data"),
                  file.path(getwd(), "..", "..", "shared", "data"))
  for (dir in candidates[nzchar(candidates)]) {
    path <- file.path(dir, ...)
    if (file.exists(path)) return(normalizePath(path))
  }
  testthat::skip(paste("shared data not found:", file.path(...)))
}
