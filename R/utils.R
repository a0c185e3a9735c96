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
  # R's integers stop here; as.integer() would make a larger number NA.
  if (x > .Machine$integer.max) {
    stop(sprintf("`%s` must be at most %d; got %s", arg, .Machine$integer.max, format(x)), call. = FALSE)
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

# What a progress bar shows after the steps: the epoch under way (`epoch`
# have been completed), the last training loss and the last completed
# epoch's validation loss (NaN: none yet, or no validation split).
.progress_status <- function(epoch, loss, validation_loss) {
  sprintf("epoch %d | loss %.4g%s", as.integer(epoch) + 1L, loss,
          if (is.nan(validation_loss)) "" else sprintf(" | validation %.4g", validation_loss))
}

# The progress callback of the C++ trainers (src/r_glue.hpp,
# progress_callbacks): with verbose = TRUE one cli progress bar per training
# stage, showing steps, the epoch, the last training loss and the last
# epoch's validation loss. The bars belong to the frame `envir`, which must
# stay alive while training runs (cli closes them when it returns).
.training_progress <- function(verbose, envir) {
  if (!isTRUE(verbose)) return(function(step, total, loss, stage, epoch, validation_loss) TRUE)
  labels <- c(model = "Training", vae = "Training the VAE", latent = "Training the latent model")
  bar <- NULL
  current <- NULL
  function(step, total, loss, stage, epoch, validation_loss) {
    if (!identical(stage, current)) {
      if (!is.null(bar)) cli::cli_progress_done(id = bar, .envir = envir)
      current <<- stage
      label <- if (stage %in% names(labels)) labels[[stage]] else paste("Training", stage)
      bar <<- cli::cli_progress_bar(
        label, total = NA, clear = FALSE, .envir = envir,
        format = paste0("{cli::pb_spin} ", label, " {cli::pb_current}/{cli::pb_total} steps | ",
                        "{cli::pb_status} | {cli::pb_elapsed}"))
    }
    cli::cli_progress_update(id = bar, set = step, total = total, .envir = envir,
                             status = .progress_status(epoch, loss, validation_loss))
    TRUE
  }
}

# "1 epoch", "2 epochs": a count with its noun, singular or plural.
.count_of <- function(n, noun, plural = paste0(noun, "s")) {
  sprintf("%s %s", format(n, big.mark = ","), if (n == 1) noun else plural)
}

# The lines of a text file (plain or gzip-compressed), "\r" endings removed.
# Clear errors, naming the file, where a reader would otherwise go on with
# something else: binary content, text that is not UTF-8, or a gzip file cut
# short (its trailer records the uncompressed size; a truncated stream ends
# before it, so the size read back from its last 4 bytes does not match).
.read_text_lines <- function(path, arg = "path") {
  size <- file.size(path)
  head <- readBin(path, "raw", min(size, 2))
  gzipped <- length(head) == 2L && head[1] == as.raw(0x1f) && head[2] == as.raw(0x8b)
  if (gzipped) {
    con <- gzfile(path, "rb")
    chunks <- list()
    repeat {
      chunk <- readBin(con, "raw", 2^24)
      if (!length(chunk)) break
      chunks[[length(chunks) + 1L]] <- chunk
    }
    close(con)
    bytes <- unlist(chunks, use.names = FALSE) %||% raw()
    con <- file(path, "rb")
    seek(con, size - 4)
    recorded <- sum(as.numeric(readBin(con, "raw", 4)) * 256^(0:3))
    close(con)
    if (size < 18 || recorded != length(bytes) %% 2^32) {
      stop(sprintf(paste0("`%s`: '%s' is a truncated or damaged gzip file (%s bytes decompressed; its ",
                          "trailer records %s)"), arg, path, format(length(bytes), big.mark = ","),
                   format(recorded, big.mark = ",")), call. = FALSE)
    }
  } else {
    bytes <- readBin(path, "raw", size)
  }
  if (any(bytes == as.raw(0))) {
    stop(sprintf("`%s`: '%s' is not a text file (it holds binary data)", arg, path), call. = FALSE)
  }
  # readLines() of the raw bytes: no re-encoding, so validity is checked below.
  con <- rawConnection(bytes)
  lines <- readLines(con, warn = FALSE)
  close(con)
  lines <- sub("\r$", "", lines, useBytes = TRUE)
  bad <- which(!validUTF8(lines))
  if (length(bad)) {
    stop(sprintf("`%s`: line %d of '%s' is not UTF-8 text", arg, bad[1], path), call. = FALSE)
  }
  Encoding(lines) <- "UTF-8"
  lines
}

# Decimal numbers as text -> doubles; NA where a field is not a plain finite
# decimal number ("0x1A", "NaN", "Inf" and values that overflow to Inf,
# such as "1e400", are all NA), so that readers can name the field.
.parse_decimal <- function(text) {
  ok <- grepl("^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$", text)
  values <- rep(NA_real_, length(text))
  values[ok] <- as.numeric(text[ok])
  values[!is.finite(values)] <- NA_real_
  values
}

# Evaluates `code` with the RNG seeded by `seed` and puts the caller's RNG
# state back afterwards, so metrics are reproducible and leave the user's
# random stream untouched.
.with_seed <- function(seed, code) {
  env <- globalenv()
  if (exists(".Random.seed", envir = env, inherits = FALSE)) {
    saved <- get(".Random.seed", envir = env, inherits = FALSE)
    on.exit(assign(".Random.seed", saved, envir = env), add = TRUE)
  } else {
    on.exit(if (exists(".Random.seed", envir = env, inherits = FALSE)) {
      rm(".Random.seed", envir = env)
    }, add = TRUE)
  }
  set.seed(seed)
  code
}

.check_flag <- function(x, arg) {
  if (!is.logical(x) || length(x) != 1L || is.na(x)) {
    stop(sprintf("`%s` must be TRUE or FALSE", arg), call. = FALSE)
  }
  invisible(x)
}

.check_positive <- function(x, arg) {
  if (!is.numeric(x) || length(x) != 1L || !is.finite(x) || x <= 0) {
    stop(sprintf("`%s` must be a single positive number", arg), call. = FALSE)
  }
  invisible(as.numeric(x))
}

# Peak resident memory of this R process in MB (Linux's VmHWM). reset = TRUE
# first resets the peak to the current resident size (writing 5 to
# /proc/self/clear_refs), so that a later call gives the peak of what ran in
# between. NA where the system has neither (or the reset is refused: a peak
# over the process's whole life would mislead).
.peak_state <- new.env(parent = emptyenv())
.peak_resident_mb <- function(reset = FALSE) {
  if (reset) {
    done <- tryCatch({
      writeLines("5", "/proc/self/clear_refs")
      TRUE
    }, error = function(e) FALSE, warning = function(w) FALSE)
    .peak_state$reset <- done
  }
  if (!isTRUE(.peak_state$reset)) return(NA_real_)
  status <- tryCatch(readLines("/proc/self/status"), error = function(e) character(), warning = function(w) character())
  line <- grep("^VmHWM:", status, value = TRUE)
  if (length(line) != 1L) return(NA_real_)
  as.numeric(gsub("[^0-9]", "", line)) / 1024
}
