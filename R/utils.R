# Small argument checks shared by the R files; errors name the argument.

.check_string <- function(x, arg) {
  if (!is.character(x) || length(x) != 1L || is.na(x) || !nzchar(x)) {
    stop(sprintf("`%s` must be a single non-empty string", arg), call. = FALSE)
  }
  invisible(x)
}

.check_count <- function(x, arg, min = 1) {
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || x < min || x != round(x)) {
    stop(sprintf("`%s` must be a single whole number >= %s", arg, format(min)), call. = FALSE)
  }
  invisible(as.integer(x))
}

.check_number <- function(x, arg, lower = -Inf, upper = Inf) {
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || x < lower || x > upper) {
    stop(sprintf("`%s` must be a single number in [%s, %s]", arg, format(lower), format(upper)),
         call. = FALSE)
  }
  invisible(as.numeric(x))
}

.first_few <- function(x, n = 5L) {
  x <- unique(x)
  paste0(paste0("'", utils::head(x, n), "'", collapse = ", "), if (length(x) > n) ", ..." else "")
}
