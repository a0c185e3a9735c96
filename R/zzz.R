#' @useDynLib exprflow, .registration = TRUE
#' @importFrom Rcpp evalCpp
NULL

# Thread policy, chosen once at load (see ?exprflow_set_threads): LibTorch's
# own (OpenMP) pool gets one thread and the BLAS keeps the cores. On a 2-core
# machine two pools of 2 threads oversubscribe the cores;
# src/core/bench/bench_compositions --threads N measures the alternatives.
# Memory policy, also chosen once at load (see ?exprflow_info): the C
# library's malloc reuses large blocks instead of mapping fresh pages for
# every tensor; options(exprflow.reuse_memory = FALSE) or
# EXPRFLOW_REUSE_MEMORY=0 before loading keeps its defaults.
.onLoad <- function(libname, pkgname) {
  threads <- getOption("exprflow.threads", Sys.getenv("EXPRFLOW_THREADS", "1"))
  threads <- suppressWarnings(as.integer(threads))
  if (is.na(threads) || threads < 1L) threads <- 1L
  .cpp_set_threads(threads)
  .cpp_reuse_large_allocations(.reuse_memory_setting())
}

# TRUE unless the option (or, without it, the environment variable) says
# no: FALSE, 0, "false", "no" or "off", read the same way from both.
.reuse_memory_setting <- function(option = getOption("exprflow.reuse_memory"),
                                  variable = Sys.getenv("EXPRFLOW_REUSE_MEMORY", "")) {
  value <- if (is.null(option)) variable else option
  !(toupper(as.character(value)[1]) %in% c("0", "FALSE", "NO", "OFF"))
}

.onAttach <- function(libname, pkgname) {
  message <- .blas_message(.cpp_runtime_info())
  if (!is.null(message)) packageStartupMessage(message)
}

# What is wrong with the BLAS set-up, or NULL: the reference BLAS, or an
# OpenBLAS running kernels narrower than the CPU's vector units.
.blas_message <- function(info) {
  if (isTRUE(info$blas_is_reference)) return(.reference_blas_message(info))
  if (nzchar(info$blas_core_advice %||% "")) return(.openblas_core_message(info))
  NULL
}

.openblas_core_message <- function(info) {
  paste0(
    "exprflow: OpenBLAS runs its '", info$blas_core, "' kernels, which leave most of this CPU's vector units ",
    "(", info$cpu_extensions, ") unused: matrix products run up to ~4x slower (its version does not recognise ",
    "the CPU). Set OPENBLAS_CORETYPE=", info$blas_core_advice, " before R starts, e.g. add the line ",
    "'OPENBLAS_CORETYPE=", info$blas_core_advice, "' to ~/.Renviron, and restart R."
  )
}

.reference_blas_message <- function(info) {
  paste0(
    "exprflow: LibTorch uses the reference BLAS (", info$blas_library, "); training will be ",
    "~15x slower than with OpenBLAS. Install it with 'apt-get install libopenblas0-pthread' ",
    "(Debian/Ubuntu) and restart R."
  )
}

#' Runtime facts of the exprflow installation
#'
#' Reports the LibTorch version the package was built against, whether CUDA
#' is compiled in and usable, how many threads LibTorch uses and which BLAS
#' does its matrix work. With Debian's reference BLAS, training is about 15
#' times slower than with OpenBLAS; `exprflow_info()` warns about it.
#'
#' OpenBLAS picks its kernels by CPU model, and a version older than the CPU
#' falls back to generic ones: Debian 12's OpenBLAS 0.3.21 runs "Prescott"
#' (SSE3) kernels on recent Xeons with AVX-512, where sgemm measured 27-53
#' GFLOP/s instead of ~215 with `OPENBLAS_CORETYPE=SkylakeX`. `exprflow_info()`
#' reports the kernels OpenBLAS runs and the CPU's vector extensions, and
#' warns (as does attaching the package) with the `OPENBLAS_CORETYPE` value to
#' set before R starts (in `~/.Renviron`) when the kernels are narrower than
#' the CPU.
#'
#' @return A list of class `exprflow_info` with elements `torch_version`,
#'   `cuda_compiled`, `cuda_available`, `cuda_device_count`, `torch_threads`,
#'   `blas`, `blas_library`, `blas_is_reference`, `blas_core` (OpenBLAS's
#'   kernels, `""` for other BLAS), `blas_threads` (OpenBLAS's threads, 0 when
#'   unknown), `cpu_extensions` (e.g. `"avx avx2 avx512f avx512bw"`),
#'   `blas_core_advice` (the `OPENBLAS_CORETYPE` that would use the CPU fully,
#'   `""` when nothing is to gain), `parallel_info`, `large_allocations_reused`
#'   (see below), `bfloat16_fast` (whether the CPU multiplies bfloat16
#'   matrices faster than float ones: AVX-512-BF16 or AMX with LibTorch's
#'   oneDNN; see `precision` in [fit_expression_model()]'s `training`).
#'
#' Memory: LibTorch's CPU tensors are large, short-lived blocks, which the C
#' library's malloc (glibc) maps afresh from the kernel and unmaps on free
#' when they exceed its mmap threshold (at most 32 MiB): every training step
#' then faults in and zeroes hundreds of MiB of new pages. exprflow makes
#' malloc keep such blocks in its heap for reuse (`large_allocations_reused`
#' is `TRUE`): on a 2-core virtual machine, training at 2,000 genes and 128
#' cells a step ran 9.3x faster for `set_tokens`, 3.9x for `grn_attention`,
#' 1.8x for `latent_tokens`, 1.6x for `pathway_tokens`, 1.4x for
#' `rank_tokens`, 1.25x for `state_mlp`, and as fast as before for the latent
#' models (`bench_compositions --malloc-default` for the old way). The price: memory
#' R frees is given back to the system only when more than 1 GiB of it is
#' free at the top of the heap, and peak resident memory rises. Kept in the
#' heap, blocks of changing sizes fragment it, so while a model trains or
#' samples LibTorch's blocks of 1 MiB and more bypass it: each is kept whole
#' for the next tensor of its size (rounded up by at most an eighth), and
#' what is kept is freed when the run ends. A `grn_attention` step at
#' 20,000 genes (32 cells) peaked at 2.9 GB against 2.1 GB under glibc's
#' defaults and 5.6 GB with the heap alone, and trained 2.5x as fast as the
#' first and as fast as the second; a `set_tokens` step at 2,000 genes (128
#' cells) peaked at 1.39 against 2.08 GB with the heap alone and trained
#' 1.25x as fast; the latent models train as fast as with the heap alone
#' (`bench_compositions --no-block-cache` for the heap alone). A batch of
#' fewer cells (the last of an epoch, a validation batch) takes the full
#' batches' kept blocks, up to twice its size: `fit_expression_model()` on
#' the example data (1,200 cells, package defaults;
#' `inst/bench/fit_seconds.R`) peaked at 1.25 GB for `grn_attention` (1.66
#' without that rule, 1.43-1.46 with the heap alone) and 1.15 GB for
#' `set_tokens` (1.45, 1.38) in the same time; `latent_mlp` at 1.13 against
#' 1.06 GB with the heap alone. While a model trains or
#' samples, nothing is given back at all, and the 1 GiB rule returns when
#' it is done: a `set_tokens` step at 128 cells frees more than 1 GiB, so
#' the heap shrank and grew again at every step; holding it made
#' `fit_expression_model()` on the example data 1.66x faster for
#' `set_tokens` (2 epochs, 23.2 s against 38.5 s, medians of 3;
#' `inst/bench/fit_seconds.R`); `grn_attention`, `rank_tokens` and
#' `latent_mlp` fitted as fast as before (3 epochs, medians of 3). Set
#' `options(exprflow.reuse_memory = FALSE)` or the environment variable
#' `EXPRFLOW_REUSE_MEMORY=0` before loading the package to keep glibc's
#' defaults. Other C libraries are left as they are.
#' @examples
#' exprflow_info()
#' @export
exprflow_info <- function() {
  info <- .cpp_runtime_info()
  message <- .blas_message(info)
  if (!is.null(message)) warning(message, call. = FALSE)
  structure(info, class = "exprflow_info")
}

#' @export
print.exprflow_info <- function(x, ...) {
  cat("exprflow ", as.character(utils::packageVersion("exprflow")), "\n", sep = "")
  cat("  LibTorch : ", x$torch_version, "\n", sep = "")
  cat("  CUDA     : ", if (x$cuda_available) paste(x$cuda_device_count, "device(s)") else "not available",
      if (x$cuda_compiled) " (kernels compiled)" else "", "\n", sep = "")
  cat("  threads  : ", x$torch_threads, " LibTorch (intra-op)\n", sep = "")
  cat("  BLAS     : ", x$blas, if (nzchar(x$blas_library)) paste0(" (", x$blas_library, ")"), "\n", sep = "")
  if (nzchar(x$blas_core %||% "")) {
    cat("  kernels  : ", x$blas_core, ", ", x$blas_threads, " thread(s)",
        if (nzchar(x$blas_core_advice)) paste0(" (set OPENBLAS_CORETYPE=", x$blas_core_advice, ")"), "\n", sep = "")
  }
  cat("  CPU      : ", if (nzchar(x$cpu_extensions %||% "")) x$cpu_extensions else "no AVX reported", "\n", sep = "")
  cat("  memory   : ", if (isTRUE(x$large_allocations_reused)) "large blocks reused" else "C library defaults",
      "\n", sep = "")
  cat("  bfloat16 : ", if (isTRUE(x$bfloat16_fast)) "fast matrix products (training = list(precision = \"bfloat16\"))"
      else "emulated, slower than float32", "\n", sep = "")
  invisible(x)
}

#' Set the number of LibTorch threads
#'
#' exprflow gives LibTorch's intra-op (OpenMP) pool one thread by default and
#' leaves the cores to the BLAS, which runs the matrix products in its own
#' thread pool: two pools each as wide as the machine oversubscribe the cores
#' (on 2 cores a training step measured several times slower). Set
#' `options(exprflow.threads = n)` or the environment variable
#' `EXPRFLOW_THREADS` before loading the package to change the default.
#'
#' @param n Number of threads (a positive integer).
#' @return The previous number of threads, invisibly.
#' @export
exprflow_set_threads <- function(n) {
  if (!is.numeric(n) || length(n) != 1L || is.na(n) || n < 1 || n != round(n)) {
    stop("`n` must be a single positive integer", call. = FALSE)
  }
  old <- .cpp_runtime_info()$torch_threads
  .cpp_set_threads(as.integer(n))
  invisible(old)
}

#' Architectures exprflow can train
#'
#' Every architecture is a composition of registered stages: a tokenizer
#' (expression -> tokens, or one state vector), a backbone (tokens + time +
#' condition -> tokens) and a decoder (tokens -> genes), trained with an
#' objective (`"flow"`: rectified flow / flow matching; `"ddpm"`) that every
#' architecture accepts through `fit_expression_model(objective = )`.
#'
#' @return A data.frame with one row per architecture: `name` (the
#'   `architecture` argument of [fit_expression_model()]), `tokenizer`,
#'   `backbone`, `decoder`, `space` (where the flow / diffusion runs:
#'   `"gene"` = standardised log-expression), `objective` (its default
#'   objective), `description` and `resources` (what
#'   [fit_expression_model()] must be given besides the cells, comma-separated;
#'   e.g. `"gene_sets"` for `"pathway_tokens"`; empty for most).
#' @examples
#' expression_architectures()
#' @export
expression_architectures <- function() .cpp_architectures()

#' Default settings of an architecture
#'
#' @param architecture One of `expression_architectures()$name` (by default
#'   [fit_expression_model()]'s, `"latent_mlp"`).
#' @param objective `NULL` for the architecture's default objective, or
#'   `"flow"` / `"ddpm"`: the objective's own settings are part of the defaults.
#' @return A named list of the architecture's settings (any of them can be
#'   passed to [fit_expression_model()] through `...`).
#' @examples
#' str(architecture_defaults("latent_tokens"))
#' str(architecture_defaults("state_mlp"))
#' @export
architecture_defaults <- function(architecture = "latent_mlp", objective = NULL) {
  .check_string(architecture, "architecture")
  if (!is.null(objective)) .check_string(objective, "objective")
  .cpp_default_spec(architecture, objective %||% "")
}

#' Default training settings of an architecture
#'
#' What [fit_expression_model()] trains with when `epochs`, `batch_size`,
#' `learning_rate` and `training` leave a setting out. VAE-based
#' architectures (`"latent_mlp"`, `"latent_dit"`) train in two stages: their
#' count VAE with the `vae_*` settings (and `kl_warmup`, the fraction of its
#' steps over which the KL weight rises from 0 to `kl_weight`: 1 for the
#' `"vae"` alone, 2 under a latent model), then the latent model with the
#' plain ones. `lora_rank`, `lora_alpha` and
#' `lora_layers` are [fine_tune()]'s (`lora_rank` 0: every weight trains).
#'
#' @param architecture One of `expression_architectures()$name` (by default
#'   [fit_expression_model()]'s, `"latent_mlp"`).
#' @return A named list of training settings.
#' @examples
#' str(training_defaults("latent_mlp"))
#' @export
training_defaults <- function(architecture = "latent_mlp") {
  .check_string(architecture, "architecture")
  defaults <- .cpp_default_train_options(architecture)
  # Set by fit_expression_model()'s own arguments, resume_training() and train_worker().
  defaults[setdiff(names(defaults), c(.checkpoint_settings, .group_settings))]
}
