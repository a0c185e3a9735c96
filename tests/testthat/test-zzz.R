# R/zzz.R: runtime information, threads, architectures.

# The report without its BLAS warning (tested on its own below): this
# machine's OpenBLAS may well run kernels narrower than its CPU.
quiet_info <- function() suppressWarnings(exprflow_info())

test_that("exprflow_info() returns its fields with sensible types", {
  info <- quiet_info()
  expect_s3_class(info, "exprflow_info")
  expect_true(all(c("torch_version", "cuda_compiled", "cuda_available", "cuda_device_count",
                    "torch_threads", "blas", "blas_library", "blas_is_reference", "blas_core", "blas_threads",
                    "cpu_extensions", "blas_core_advice", "parallel_info")
                  %in% names(info)))
  expect_type(info$torch_version, "character")
  expect_match(info$torch_version, "^[12]\\.")
  expect_type(info$cuda_compiled, "logical")
  expect_type(info$cuda_available, "logical")
  expect_true(is.numeric(info$cuda_device_count) && info$cuda_device_count >= 0)
  if (!info$cuda_available) expect_equal(info$cuda_device_count, 0)
  if (info$cuda_available) expect_true(info$cuda_compiled)
  expect_true(is.numeric(info$torch_threads) && info$torch_threads >= 1)
  expect_true(is.character(info$blas) && length(info$blas) == 1L && nzchar(info$blas))
  expect_type(info$blas_library, "character")
  expect_type(info$blas_is_reference, "logical")
  expect_type(info$parallel_info, "character")
  if (identical(info$blas, "OpenBLAS")) {
    expect_true(nzchar(info$blas_core))
    expect_true(info$blas_threads >= 1)
  }
  expect_true(info$blas_core_advice %in% c("", "SkylakeX", "Haswell"))
  expect_type(info$large_allocations_reused, "logical")
  expect_type(info$bfloat16_fast, "logical")
  expect_output(print(info), "bfloat16 : ")
})

test_that("large blocks are reused unless the option or the environment variable says no", {
  expect_true(.reuse_memory_setting(NULL, ""))
  expect_true(.reuse_memory_setting(NULL, "1"))
  for (no in c("0", "false", "FALSE", "off", "no")) expect_false(.reuse_memory_setting(NULL, no))
  expect_false(.reuse_memory_setting(FALSE, ""))
  expect_false(.reuse_memory_setting(0, ""))
  expect_false(.reuse_memory_setting("off", ""))
  expect_true(.reuse_memory_setting(TRUE, "0"))  # the option wins
  # glibc ("linux-gnu"): the package loaded with the policy on, unless told not to.
  skip_if_not(grepl("linux-gnu", R.version$os), "the policy needs glibc")
  expect_identical(quiet_info()$large_allocations_reused, .reuse_memory_setting())
  on.exit(.cpp_reuse_large_allocations(.reuse_memory_setting()), add = TRUE)
  expect_true(.cpp_reuse_large_allocations(FALSE))
  expect_false(quiet_info()$large_allocations_reused)
  expect_match(paste(capture.output(print(quiet_info())), collapse = "\n"), "memory   : C library defaults",
               fixed = TRUE)
  expect_true(.cpp_reuse_large_allocations(TRUE))
  expect_true(quiet_info()$large_allocations_reused)
  expect_match(paste(capture.output(print(quiet_info())), collapse = "\n"), "memory   : large blocks reused",
               fixed = TRUE)
})

test_that("a BLAS that leaves the CPU unused is reported with the fix", {
  base <- list(blas = "OpenBLAS", blas_library = "/usr/lib/libopenblas.so.0", blas_is_reference = FALSE,
               blas_core = "Prescott", blas_threads = 2L, cpu_extensions = "avx avx2 avx512f avx512bw",
               blas_core_advice = "SkylakeX")
  msg <- .blas_message(base)
  expect_match(msg, "'Prescott' kernels")
  expect_match(msg, "OPENBLAS_CORETYPE=SkylakeX", fixed = TRUE)
  expect_match(msg, "~/.Renviron", fixed = TRUE)
  expect_null(.blas_message(modifyList(base, list(blas_core = "SkylakeX", blas_core_advice = ""))))
  expect_match(.blas_message(modifyList(base, list(blas_is_reference = TRUE, blas = "reference BLAS"))),
               "reference BLAS")
  # exprflow_info() warns exactly when this machine's set-up has something to fix.
  expected <- .blas_message(.cpp_runtime_info())
  if (is.null(expected)) {
    expect_no_warning(exprflow_info())
  } else {
    expect_warning(exprflow_info(), expected, fixed = TRUE)
  }
  report <- structure(c(base, list(torch_version = "1.13.0", cuda_available = FALSE, cuda_compiled = FALSE,
                                   cuda_device_count = 0L, torch_threads = 1L)), class = "exprflow_info")
  expect_output(print(report), "kernels  : Prescott, 2 thread(s) (set OPENBLAS_CORETYPE=SkylakeX)", fixed = TRUE)
  expect_output(print(report), "CPU      : avx avx2 avx512f avx512bw", fixed = TRUE)
})

test_that("exprflow_info() prints a readable report", {
  info <- quiet_info()
  expect_output(print(info), "LibTorch : [12]\\.")
  expect_output(print(info), "BLAS")
  expect_output(print(info), "threads")
})

test_that("exprflow_set_threads() returns the previous value invisibly and sets the new one", {
  original <- quiet_info()$torch_threads
  on.exit(exprflow_set_threads(original), add = TRUE)
  expect_invisible(exprflow_set_threads(2))
  expect_equal(quiet_info()$torch_threads, 2)
  expect_invisible(previous <- exprflow_set_threads(1))
  expect_equal(previous, 2)
  expect_equal(quiet_info()$torch_threads, 1)
  expect_equal(exprflow_set_threads(1), 1)
})

test_that("exprflow_set_threads() rejects invalid values", {
  expect_error(exprflow_set_threads(0), "single positive integer")
  expect_error(exprflow_set_threads("a"), "single positive integer")
  expect_error(exprflow_set_threads(1.5), "single positive integer")
  expect_error(exprflow_set_threads(NA), "single positive integer")
  expect_error(exprflow_set_threads(c(1, 2)), "single positive integer")
})

test_that("expression_architectures() is the composition table", {
  architectures <- expression_architectures()
  expect_s3_class(architectures, "data.frame")
  expect_named(architectures, c("name", "tokenizer", "backbone", "decoder", "space", "objective", "description",
                               "resources"))
  expect_true(all(c("latent_tokens", "state_mlp") %in% architectures$name))
  expect_false(anyDuplicated(architectures$name) > 0)
  row <- architectures[architectures$name == "latent_tokens", ]
  expect_identical(c(row$tokenizer, row$backbone, row$objective), c("latent_tokens", "dit", "ddpm"))
  row <- architectures[architectures$name == "state_mlp", ]
  expect_identical(c(row$tokenizer, row$backbone, row$objective), c("state_vector", "residual_mlp", "flow"))
  expect_true(all(nzchar(architectures$description)))
})

test_that("architecture_defaults() gives the documented defaults", {
  # Those of fit_expression_model()'s default architecture.
  expect_identical(architecture_defaults(), architecture_defaults("latent_mlp"))
  expect_identical(training_defaults(), training_defaults("latent_mlp"))
  expect_identical(formals(fit_expression_model)$architecture, "latent_mlp")
  defaults <- architecture_defaults("latent_tokens")
  expect_type(defaults, "list")
  expect_equal(defaults$n_tokens, 64)
  expect_equal(defaults$token_dim, 256)
  expect_equal(defaults$n_layers, 8)
  expect_equal(defaults$n_heads, 8)
  expect_equal(defaults$hidden, 2048)
  expect_identical(defaults$architecture, "latent_tokens")
})

test_that("architecture_defaults() carries the objective's settings", {
  expect_identical(architecture_defaults("latent_tokens")$objective, "ddpm")
  expect_identical(architecture_defaults("latent_tokens")$prediction, "v")
  flow <- architecture_defaults("latent_tokens", objective = "flow")
  expect_identical(flow$objective, "flow")
  expect_identical(flow$time_distribution, "uniform")
  expect_null(flow$schedule)
  expect_identical(architecture_defaults("state_mlp")$objective, "flow")
  expect_error(architecture_defaults("state_mlp", objective = "gan"), "unknown objective 'gan'")
})

test_that("architecture_defaults() rejects unknown architectures", {
  expect_error(architecture_defaults("transformer"), "latent_tokens")
  expect_error(architecture_defaults(NA_character_), "`architecture` must be a single")
  expect_error(architecture_defaults(1), "`architecture` must be a single")
})

test_that("the vignettes are built and installed with the package", {
  found <- utils::vignette(package = "exprflow", lib.loc = dirname(system.file(package = "exprflow")))$results
  expect_setequal(found[, "Item"], c("exprflow", "evaluation", "connectivity", "perturbation", "dynamics"))
  doc <- system.file("doc", package = "exprflow")
  expect_true(all(file.exists(file.path(doc, c("exprflow.html", "evaluation.html", "connectivity.html",
                                               "perturbation.html", "dynamics.html")))))
})
