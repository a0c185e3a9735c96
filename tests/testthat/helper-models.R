# Shared fixtures of the exprflow tests. Helpers are sourced once per test run,
# so the models below are fitted at most once and shared by every test file.

.exprflow_test_cache <- new.env(parent = emptyenv())

# Memoises the value of `expr` under `key` for the whole test run.
.cached <- function(key, expr) {
  if (!exists(key, envir = .exprflow_test_cache, inherits = FALSE)) {
    assign(key, expr, envir = .exprflow_test_cache)
  }
  get(key, envir = .exprflow_test_cache, inherits = FALSE)
}

# The latent-token DiT with settings small enough for a 2-core CI machine.
tiny_settings <- function() {
  list(architecture = "latent_tokens", n_tokens = 4, token_dim = 16, n_layers = 1, n_heads = 2, hidden = 64)
}

# Fits a tiny model with the test settings; `...` overrides fit arguments.
fit_tiny <- function(x, ...) {
  args <- utils::modifyList(c(list(x = x, epochs = 1, batch_size = 128, learning_rate = 1e-3,
                                   verbose = FALSE, seed = 1), tiny_settings()),
                            list(...))
  do.call(fit_expression_model, args)
}

# The example data, loaded once.
pbmc_sce <- function() .cached("pbmc_sce", example_pbmc())
pbmc_counts <- function() .cached("pbmc_counts", example_pbmc(as = "matrix")$counts)

# A small slice of the example counts (dgCMatrix, genes x cells).
small_counts <- function(genes = 60, cells = 30) {
  pbmc_counts()[seq_len(genes), seq_len(cells), drop = FALSE]
}

# THE shared conditional model: fitted once on the example data with
# condition = "cell_type". Tests must not rely on it never having been saved
# (save_model() records a path in it); fit a throwaway model for that.
tiny_model <- function() {
  .cached("tiny_model", fit_expression_model(
    pbmc_sce(), "latent_tokens", condition = "cell_type", epochs = 3, n_tokens = 4, token_dim = 16,
    n_layers = 1, n_heads = 2, hidden = 64, batch_size = 128, learning_rate = 1e-3,
    verbose = FALSE, seed = 1))
}

# A tiny state-vector model trained by flow matching (the state_mlp
# composition), conditional on cell type.
tiny_flow_model <- function() {
  .cached("tiny_flow_model", fit_expression_model(
    pbmc_sce()[, seq(1, 1200, by = 3)], architecture = "state_mlp", condition = "cell_type", epochs = 2,
    hidden = 32, n_layers = 1, batch_size = 128, learning_rate = 1e-3, verbose = FALSE, seed = 1))
}

# A tiny unconditional model on a subset of the cells.
tiny_unconditional_model <- function() {
  .cached("tiny_unconditional_model", fit_tiny(pbmc_sce()[, seq_len(300)], epochs = 2))
}

# TRUE when every value of a (sparse or dense) matrix is a whole number.
all_whole <- function(m) {
  v <- if (methods::is(m, "sparseMatrix")) methods::as(m, "CsparseMatrix")@x else as.vector(m)
  all(is.finite(v)) && all(v == round(v))
}

# Largest elementwise relative difference; where `expected` is 0, `actual`
# must be exactly 0 too (else Inf).
max_relative_difference <- function(actual, expected) {
  actual <- as.matrix(actual)
  expected <- as.matrix(expected)
  stopifnot(identical(dim(actual), dim(expected)))
  nonzero <- expected != 0
  if (any(actual[!nonzero] != 0)) return(Inf)
  if (!any(nonzero)) return(0)
  max(abs(actual[nonzero] - expected[nonzero]) / abs(expected[nonzero]))
}
