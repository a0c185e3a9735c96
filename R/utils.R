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

# A sampling seed, R's way: an explicit seed (checked) reproduces; NULL draws
# one from R's RNG, so that set.seed() before the call fixes the result and
# repeated calls differ.
.sampling_seed <- function(seed, arg = "seed") {
  if (is.null(seed)) return(sample.int(.Machine$integer.max - 1L, 1L))
  .check_count(seed, arg, min = 0)
  seed
}

# Methods take `...` only to match their generic: anything that arrives there
# is a misspelled or unsupported argument, an error rather than ignored.
.reject_unknown_arguments <- function(dots, fun) {
  if (!length(dots)) return(invisible())
  given <- names(dots)
  if (is.null(given)) given <- rep("", length(dots))
  shown <- ifelse(nzchar(given), paste0("`", given, "`"), "an unnamed argument")
  stop(sprintf("%s() got unknown argument%s: %s", fun, if (length(dots) > 1L) "s" else "",
               paste(shown, collapse = ", ")), call. = FALSE)
}
