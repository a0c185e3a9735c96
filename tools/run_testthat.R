# Runs the testthat suite against the installed package (see the Makefile's
# `test` target) and prints one closing line that the Makefile adds up:
#   testthat: N passed, N failed, N skipped
# counting test_that() blocks (a block fails if any expectation in it fails or
# it errors; it is skipped if it was skipped before passing anything).
library(testthat)
library(exprflow)
results <- testthat::test_dir("tests/testthat", package = "exprflow", load_package = "installed",
                              reporter = testthat::ProgressReporter$new(show_praise = FALSE),
                              stop_on_failure = FALSE)
df <- as.data.frame(results)
failed <- df$failed > 0 | df$error
skipped <- !failed & df$skipped & df$passed == 0
passed <- !failed & !skipped
cat(sprintf("testthat: %d passed, %d failed, %d skipped\n", sum(passed), sum(failed), sum(skipped)))
quit(status = if (any(failed)) 1 else 0)
