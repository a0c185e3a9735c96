# Baselines for connectivity prediction: what a neural model has to beat.
# Each is fitted on the same region pairs as the neural models and predicts
# the same pairs; fit_connectivity() dispatches to them by name.
#
#   cge_linear      correlated gene expression: y ~ a + b * cor(x_i, x_j)
#                   (base R, here)
#   distance_decay  y ~ a + b * exp(-d_ij / lambda), d = Euclidean distance of
#                   the region centroids (needs coordinates; no expression)
#                   (base R, here)
#   bilinear        low-rank bilinear form of the two standardised expression
#                   profiles, y ~ c + z_i' W z_j with W of rank <= 2 * rank:
#                   a C++ connectivity model
#                   (src/core/connectivity/bilinear_network.hpp) trained by
#                   the shared trainer with early stopping on the validation
#                   pairs; fit_connectivity() creates, trains and predicts it
#                   through the connectivity glue like the neural models, and
#                   this file maps its R settings (.bilinear_settings()).

.baseline_models <- c("cge_linear", "distance_decay", "bilinear")
# The baselines fitted in R; the others live in the C++ connectivity registry.
.r_baseline_models <- c("cge_linear", "distance_decay")

.baseline_defaults <- list(
  cge_linear = list(),
  distance_decay = list()
)

# The classes of a fit of `model`, most specific first: its model
# ("exprflow_connectivity_cge_linear", ...), then "..._neural" for the
# attention models, "..._cpp" for every C++ model (neural and bilinear: an
# external pointer, model bytes and a training history), then the common
# "exprflow_connectivity". Methods on them predict, describe and save fits.
.connectivity_classes <- function(model) {
  c(paste0("exprflow_connectivity_", model),
    if (!model %in% .baseline_models) "exprflow_connectivity_neural",
    if (!model %in% .r_baseline_models) "exprflow_connectivity_cpp",
    "exprflow_connectivity")
}

# Whether a fit is a C++ connectivity model (neural or bilinear).
.cpp_backed <- function(fit) inherits(fit, "exprflow_connectivity_cpp")

# Splits the settings of a bilinear fit (`...` of fit_connectivity()) into
# its C++ spec (rank, lambda, symmetric) and its number of epochs:
# `iterations`, the name of the R implementation's full-batch steps, is kept
# as another name for `epochs` (one full-batch step per epoch).
.bilinear_settings <- function(settings, epochs) {
  spec_names <- setdiff(names(.cpp_connectivity_default_spec("bilinear")), c("architecture", "device"))
  valid <- c(spec_names, "iterations")
  unknown <- setdiff(names(settings), valid)
  if (length(unknown)) {
    stop(sprintf("unknown setting(s) for model 'bilinear': %s; valid: %s (training: `epochs`, `batch_size`, ",
                 .first_few(unknown), .first_few(valid, 10L)),
         "`learning_rate`, `patience`, `training`)", call. = FALSE)
  }
  if (!is.null(settings$iterations)) {
    .check_count(settings$iterations, "iterations")
    if (!is.null(epochs) && epochs != settings$iterations) {
      stop("`iterations` and `epochs` are the same thing for model 'bilinear': give one", call. = FALSE)
    }
    epochs <- settings$iterations
    settings$iterations <- NULL
  }
  if (!is.null(settings$rank)) .check_count(settings$rank, "rank")
  if (!is.null(settings$lambda)) .check_number(settings$lambda, "lambda", lower = 0)
  if (!is.null(settings$symmetric)) {
    sym <- settings$symmetric
    if (!(is.numeric(sym) && length(sym) == 1L && sym %in% c(0, 1))) .check_flag(sym, "symmetric")
    settings$symmetric <- as.numeric(sym)  # the C++ spec holds 0 / 1
  }
  list(spec = settings, epochs = epochs)
}

.baseline_args <- function(model, args) {
  defaults <- .baseline_defaults[[model]]
  unknown <- setdiff(names(args), names(defaults))
  if (length(unknown)) {
    stop(sprintf("unknown setting(s) for model '%s': %s; valid: %s", model, .first_few(unknown),
                 if (length(defaults)) .first_few(names(defaults), 10L) else "none"), call. = FALSE)
  }
  utils::modifyList(defaults, args)
}

# Least-squares line y ~ a + b * f; b = 0 when f is constant.
.fit_line <- function(f, y) {
  v <- stats::var(f)
  b <- if (is.na(v) || v <= 0) 0 else stats::cov(f, y) / v
  c(a = mean(y) - b * mean(f), b = b)
}

.region_correlation <- function(expression) {
  r <- suppressWarnings(stats::cor(t(expression)))
  r[is.na(r)] <- 0  # a region with constant expression correlates with nothing
  r
}

.pair_distance <- function(coords, i, j) sqrt(rowSums((coords[i, , drop = FALSE] - coords[j, , drop = FALSE])^2))

# Fits an R baseline on pairs (i, j) of `expression` rows with targets y.
.fit_pair_baseline_model <- function(model, expression, coords, i, j, y, args = list()) {
  args <- .baseline_args(model, args)
  if (!length(y)) stop("no training pairs: every pair has a region outside the training regions", call. = FALSE)
  parameters <- structure(list(model = model, args = args), class = .baseline_parameter_classes(model))
  .fit_pair_baseline(parameters, expression, coords, i, j, y)
}

# The parameters of an R baseline are an object of class
# "exprflow_<model>_parameters": its methods fit and predict.
.baseline_parameter_classes <- function(model) {
  c(paste0("exprflow_", model, "_parameters"), "exprflow_connectivity_baseline")
}

.fit_pair_baseline <- function(parameters, expression, coords, i, j, y) {
  UseMethod(".fit_pair_baseline")
}

.fit_pair_baseline.exprflow_cge_linear_parameters <- function(parameters, expression, coords, i, j, y) {
  parameters$coef <- .fit_line(.region_correlation(expression)[cbind(i, j)], y)
  parameters
}

.fit_pair_baseline.exprflow_distance_decay_parameters <- function(parameters, expression, coords, i, j,
                                                                          y) {
  if (is.null(coords)) stop("model 'distance_decay' needs region coordinates: pass `coords`", call. = FALSE)
  utils::modifyList(parameters, .fit_distance_decay(.pair_distance(coords, i, j), y))
}

.predict_pair_baseline <- function(fit, expression, coords, i, j) UseMethod(".predict_pair_baseline")

.predict_pair_baseline.exprflow_cge_linear_parameters <- function(fit, expression, coords, i, j) {
  unname(fit$coef["a"] + fit$coef["b"] * .region_correlation(expression)[cbind(i, j)])
}

.predict_pair_baseline.exprflow_distance_decay_parameters <- function(fit, expression, coords, i, j) {
  if (is.null(coords)) stop("model 'distance_decay' needs region coordinates: pass `coords`", call. = FALSE)
  unname(fit$coef["a"] + fit$coef["b"] * exp(-.pair_distance(coords, i, j) / fit$lambda))
}

# Exponential decay: for each length scale lambda the best (a, b) is a linear
# least-squares fit, so lambda is found by a log-spaced grid search refined
# with a 1-d optimisation around the best grid point.
.fit_distance_decay <- function(d, y) {
  sse <- function(log_lambda) {
    f <- exp(-d / exp(log_lambda))
    cf <- .fit_line(f, y)
    sum((y - cf["a"] - cf["b"] * f)^2)
  }
  pos <- d[d > 0]
  lo <- log(if (length(pos)) min(pos) / 4 else 1e-3)
  hi <- log(max(c(d, 1e-3)) * 4)
  grid <- seq(lo, hi, length.out = 60L)
  values <- vapply(grid, sse, numeric(1))
  k <- which.min(values)
  opt <- stats::optimize(sse, c(grid[max(1L, k - 1L)], grid[min(length(grid), k + 1L)]))
  best <- if (opt$objective < values[k]) opt$minimum else grid[k]
  lambda <- exp(best)
  list(coef = .fit_line(exp(-d / lambda), y), lambda = lambda)
}
