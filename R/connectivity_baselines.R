# Baselines for connectivity prediction, in base R: what a neural model has to
# beat. Each is fitted on the same region pairs as the neural models and
# predicts the same pairs; fit_connectivity() dispatches to them by name.
#
#   cge_linear      correlated gene expression: y ~ a + b * cor(x_i, x_j)
#   distance_decay  y ~ a + b * exp(-d_ij / lambda), d = Euclidean distance of
#                   the region centroids (needs coordinates; no expression)
#   bilinear        low-rank bilinear form of the two expression profiles,
#                   y ~ c + x_i' W x_j with W of rank <= 2 * rank

.baseline_models <- c("cge_linear", "distance_decay", "bilinear")

.baseline_defaults <- list(
  cge_linear = list(),
  distance_decay = list(),
  bilinear = list(rank = 8, lambda = 1e-3, iterations = 1500, learning_rate = 0.01, symmetric = TRUE,
                  eval_every = 25)
)

# Runs `expr` with the R random seed set to `seed`, leaving the caller's RNG
# state as it was.
.connectivity_seeded <- function(seed, expr) {
  had <- exists(".Random.seed", envir = globalenv(), inherits = FALSE)
  if (had) old <- get(".Random.seed", envir = globalenv(), inherits = FALSE)
  on.exit(if (had) assign(".Random.seed", old, envir = globalenv()) else
    if (exists(".Random.seed", envir = globalenv(), inherits = FALSE))
      rm(".Random.seed", envir = globalenv()))
  set.seed(seed)
  expr
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

# Fits a baseline on pairs (i, j) of `expression` rows with targets y;
# (val_i, val_j, val_y) are optional validation pairs (bilinear early stopping).
.fit_baseline <- function(model, expression, coords, i, j, y, args = list(), seed = 1,
                          val_i = integer(), val_j = integer(), val_y = numeric()) {
  args <- .baseline_args(model, args)
  if (!length(y)) stop("no training pairs: every pair has a region outside the training regions", call. = FALSE)
  fit <- switch(model,
    cge_linear = {
      r <- .region_correlation(expression)[cbind(i, j)]
      list(coef = .fit_line(r, y))
    },
    distance_decay = {
      if (is.null(coords)) {
        stop("model 'distance_decay' needs region coordinates: pass `coords`", call. = FALSE)
      }
      .fit_distance_decay(.pair_distance(coords, i, j), y)
    },
    bilinear = .connectivity_seeded(seed, .fit_bilinear(expression, i, j, y, args, val_i, val_j, val_y))
  )
  fit$model <- model
  fit$args <- args
  class(fit) <- "exprflow_connectivity_baseline"
  fit
}

.predict_baseline <- function(fit, expression, coords, i, j) {
  switch(fit$model,
    cge_linear = unname(fit$coef["a"] + fit$coef["b"] * .region_correlation(expression)[cbind(i, j)]),
    distance_decay = {
      if (is.null(coords)) stop("model 'distance_decay' needs region coordinates: pass `coords`", call. = FALSE)
      d <- .pair_distance(coords, i, j)
      unname(fit$coef["a"] + fit$coef["b"] * exp(-d / fit$lambda))
    },
    bilinear = .predict_bilinear(fit, expression, i, j)
  )
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

# Low-rank bilinear model on centred, standardised expression z:
#   asymmetric: y_hat = c + (z_i' U) . (z_j' V)             (W = U V')
#   symmetric:  y_hat = c + (z_i' U).(z_j' V) + (z_i' V).(z_j' U)  (W = U V' + V U')
# Full-batch Adam on mean squared error + lambda/2 (|U|^2 + |V|^2), targets
# standardised; with validation pairs the weights of the best validation MSE
# (checked every `eval_every` iterations) are kept.
.fit_bilinear <- function(expression, i, j, y, args, val_i, val_j, val_y) {
  .check_count(args$rank, "rank")
  .check_count(args$iterations, "iterations")
  .check_number(args$lambda, "lambda", lower = 0)
  .check_number(args$learning_rate, "learning_rate", lower = 0)
  rows <- sort(unique(c(i, j)))
  center <- colMeans(expression[rows, , drop = FALSE])
  spread <- stats::sd(as.vector(sweep(expression[rows, , drop = FALSE], 2L, center)))
  if (!is.finite(spread) || spread <= 0) spread <- 1
  z <- sweep(expression, 2L, center) / spread
  y_mean <- mean(y)
  y_sd <- stats::sd(y)
  if (!is.finite(y_sd) || y_sd <= 0) y_sd <- 1
  ys <- (y - y_mean) / y_sd
  n <- nrow(z)
  g <- ncol(z)
  r <- as.integer(args$rank)
  params <- list(U = matrix(stats::rnorm(g * r, sd = 0.1 / sqrt(g)), g, r),
                 V = matrix(stats::rnorm(g * r, sd = 0.1 / sqrt(g)), g, r), c = 0)
  symmetric <- isTRUE(args$symmetric)
  scatter <- function(values, index) {
    out <- matrix(0, n, ncol(values))
    s <- rowsum(values, index, reorder = TRUE)
    out[as.integer(rownames(s)), ] <- s
    out
  }
  forward <- function(p, a_i, a_j) {
    A <- z %*% p$U
    B <- z %*% p$V
    out <- rowSums(A[a_i, , drop = FALSE] * B[a_j, , drop = FALSE])
    if (symmetric) out <- out + rowSums(B[a_i, , drop = FALSE] * A[a_j, , drop = FALSE])
    list(pred = out + p$c, A = A, B = B)
  }
  m <- lapply(params, function(x) x * 0)
  v <- m
  beta1 <- 0.9
  beta2 <- 0.999
  P <- length(ys)
  has_val <- length(val_y) > 0L
  best <- list(params = params, mse = Inf, iteration = 0L)
  for (t in seq_len(args$iterations)) {
    f <- forward(params, i, j)
    e <- (f$pred - ys) / P
    gA <- scatter(e * f$B[j, , drop = FALSE], i)
    gB <- scatter(e * f$A[i, , drop = FALSE], j)
    if (symmetric) {
      gA <- gA + scatter(e * f$B[i, , drop = FALSE], j)
      gB <- gB + scatter(e * f$A[j, , drop = FALSE], i)
    }
    grads <- list(U = crossprod(z, gA) + args$lambda * params$U,
                  V = crossprod(z, gB) + args$lambda * params$V, c = sum(e))
    for (name in names(params)) {
      m[[name]] <- beta1 * m[[name]] + (1 - beta1) * grads[[name]]
      v[[name]] <- beta2 * v[[name]] + (1 - beta2) * grads[[name]]^2
      step <- (m[[name]] / (1 - beta1^t)) / (sqrt(v[[name]] / (1 - beta2^t)) + 1e-8)
      params[[name]] <- params[[name]] - args$learning_rate * step
    }
    if (has_val && (t %% args$eval_every == 0L || t == args$iterations)) {
      mse <- mean((forward(params, val_i, val_j)$pred - (val_y - y_mean) / y_sd)^2)
      if (mse < best$mse) best <- list(params = params, mse = mse, iteration = t)
    }
  }
  if (!has_val) best <- list(params = params, mse = NA_real_, iteration = args$iterations)
  list(U = best$params$U, V = best$params$V, c = best$params$c, center = center, spread = spread,
       y_mean = y_mean, y_sd = y_sd, symmetric = symmetric, best_iteration = best$iteration,
       validation_mse = best$mse * y_sd^2)
}

.predict_bilinear <- function(fit, expression, i, j) {
  z <- sweep(expression, 2L, fit$center) / fit$spread
  A <- z %*% fit$U
  B <- z %*% fit$V
  out <- rowSums(A[i, , drop = FALSE] * B[j, , drop = FALSE])
  if (fit$symmetric) out <- out + rowSums(B[i, , drop = FALSE] * A[j, , drop = FALSE])
  (out + fit$c) * fit$y_sd + fit$y_mean
}
