# Baselines recover planted signals; region-level CV cannot leak.

planted_regions <- function(n = 40, g = 10, seed = 1) {
  set.seed(seed)
  coords <- matrix(rnorm(n * 3, sd = 30), n, 3, dimnames = list(paste0("r", 1:n), c("x", "y", "z")))
  expr <- matrix(runif(n * g), n, g, dimnames = list(paste0("r", 1:n), paste0("g", 1:g)))
  list(expr = expr, coords = coords, d = as.matrix(dist(coords)))
}

test_that("distance_decay recovers an exponential decay of distance", {
  s <- planted_regions()
  conn <- 0.3 + 2 * exp(-s$d / 20)
  fit <- fit_connectivity(s$expr, conn, s$coords, model = "distance_decay", verbose = FALSE)
  expect_equal(fit$baseline$lambda, 20, tolerance = 1e-3)
  expect_equal(unname(fit$baseline$coef), c(0.3, 2), tolerance = 1e-3)
  pred <- predict_connectivity(fit)
  off <- row(conn) != col(conn)
  expect_gt(cor(pred[off], conn[off]), 0.99)
  expect_output(print(fit), "exp\\(-d / 20")
  expect_error(fit_connectivity(s$expr, conn, model = "distance_decay"), "needs region coordinates")
})

test_that("cge_linear recovers a linear function of expression correlation", {
  s <- planted_regions()
  conn <- 1 - 0.5 * cor(t(s$expr))
  fit <- fit_connectivity(s$expr, conn, model = "cge_linear", verbose = FALSE)
  expect_equal(unname(fit$baseline$coef), c(1, -0.5), tolerance = 1e-8)
  pred <- predict_connectivity(fit)
  expect_equal(pred[1, 2], conn[1, 2], tolerance = 1e-8)
})

test_that("bilinear recovers a planted low-rank bilinear form", {
  s <- planted_regions(n = 40, g = 12, seed = 2)
  z <- sweep(s$expr, 2, colMeans(s$expr))
  U <- matrix(rnorm(24), 12, 2)
  V <- matrix(rnorm(24), 12, 2)
  conn <- z %*% (U %*% t(V) + V %*% t(U)) %*% t(z)
  fit <- fit_connectivity(s$expr, conn, model = "bilinear", rank = 4, seed = 3, verbose = FALSE)
  pred <- predict_connectivity(fit)
  off <- row(conn) != col(conn)
  expect_gt(cor(pred[off], conn[off]), 0.95)
  expect_equal(pred, t(pred), tolerance = 1e-5)  # symmetric W: f(i, j) = f(j, i)
  expect_identical(pred, predict_connectivity(
    fit_connectivity(s$expr, conn, model = "bilinear", rank = 4, seed = 3, verbose = FALSE)))
  expect_equal(fit$parameters, 2 * 12 * 4 + 1)
  expect_output(print(fit), "W = U V' \\+ V U' of rank <= 8")
  expect_error(fit_connectivity(s$expr, conn, model = "bilinear", ranks = 2), "unknown setting.*'ranks'")
  expect_error(fit_connectivity(s$expr, conn, model = "cge_linear", rank = 2), "unknown setting")
})

test_that("bilinear is a C++ model of the shared trainer: defaults, epochs, save / load", {
  s <- planted_regions(n = 16, g = 6, seed = 7)
  conn <- 1 + 2 * cor(t(s$expr))
  d <- connectivity_defaults("bilinear")
  expect_equal(c(d$spec$rank, d$spec$lambda, d$spec$symmetric), c(8, 1e-3, 1))
  expect_equal(d$training[c("epochs", "learning_rate", "weight_decay", "patience")],
               list(epochs = 1500, learning_rate = 0.01, weight_decay = 0, patience = 1500))
  # `iterations` (the R implementation's name) and `epochs` are one setting: full-batch steps.
  a <- fit_connectivity(s$expr, conn, model = "bilinear", iterations = 30, verbose = FALSE)
  b <- fit_connectivity(s$expr, conn, model = "bilinear", epochs = 30, verbose = FALSE)
  expect_equal(nrow(a$history), 30L)
  expect_identical(predict_connectivity(a), predict_connectivity(b))
  expect_error(fit_connectivity(s$expr, conn, model = "bilinear", iterations = 30, epochs = 20), "give one")
  expect_true(all(is.finite(a$history$validation_loss)))  # early stopping watches the validation pairs
  # The learning rate and the ridge penalty reach the model.
  expect_false(identical(predict_connectivity(a),
                         predict_connectivity(fit_connectivity(s$expr, conn, model = "bilinear", epochs = 30,
                                                               learning_rate = 0.001, verbose = FALSE))))
  expect_false(identical(predict_connectivity(a),
                         predict_connectivity(fit_connectivity(s$expr, conn, model = "bilinear", epochs = 30,
                                                               lambda = 1, verbose = FALSE))))
  asym <- fit_connectivity(s$expr, conn, model = "bilinear", epochs = 30, symmetric = FALSE, verbose = FALSE)
  expect_identical(asym$spec$symmetric, 0)
  pred <- predict_connectivity(asym)
  expect_gt(max(abs(pred - t(pred)), na.rm = TRUE), 1e-4)
  expect_error(fit_connectivity(s$expr, conn, model = "bilinear", symmetric = "yes"), "`symmetric`")
  expect_error(connectivity_attention(a, 1, 2), "no attention maps")
  path <- tempfile(fileext = ".rds")
  save_connectivity(asym, path)
  expect_identical(predict_connectivity(load_connectivity(path)), pred)
  expect_output(print(asym), "W = U V' of rank <= 8")
})

test_that("bilinear beats the mean on held-out regions of a planted bilinear target", {
  s <- planted_regions(n = 40, g = 12, seed = 2)
  z <- sweep(s$expr, 2, colMeans(s$expr))
  U <- matrix(rnorm(24), 12, 2)
  V <- matrix(rnorm(24), 12, 2)
  conn <- 1 + z %*% (U %*% t(V) + V %*% t(U)) %*% t(z)
  cv <- cross_validate_connectivity(s$expr, conn, models = "bilinear", folds = 4, permuted_null = FALSE,
                                    model_args = list(bilinear = list(rank = 4, epochs = 500)))
  # The trivial predictor, the mean target, has an MSE of about the target's variance.
  off <- row(conn) != col(conn)
  expect_true(all(cv$pearson > 0.9))
  expect_lt(max(cv$mse), 0.2 * var(conn[off]))
  # The neural models' training arguments in `...` leave the baseline's own alone.
  again <- cross_validate_connectivity(s$expr, conn, models = "bilinear", folds = 4, permuted_null = FALSE,
                                       model_args = list(bilinear = list(rank = 4, epochs = 500)), batch_size = 8,
                                       patience = 1)
  expect_identical(again$pearson, cv$pearson)
})

test_that("fit_connectivity() trains only on pairs of training regions", {
  s <- planted_regions(n = 20)
  conn <- 0.3 + 2 * exp(-s$d / 20)
  fit <- fit_connectivity(s$expr, conn, s$coords, model = "bilinear", train_regions = 1:12,
                          validation_fraction = 0.25, iterations = 50, verbose = FALSE)
  expect_true(all(fit$train_pairs %in% 1:12))
  expect_equal(nrow(fit$train_pairs), 12 * 11)
  expect_length(fit$validation_regions, 3L)
  expect_true(all(fit$validation_regions %in% 1:12))
  expect_equal(fit$n_train_pairs + fit$n_validation_pairs, 12 * 11)
  expect_equal(fit$n_train_pairs, 9 * 8)
  # cge_linear has nothing to stop early: it fits on every pair of training regions.
  cge <- fit_connectivity(s$expr, conn, s$coords, model = "cge_linear", train_regions = 1:12)
  expect_equal(cge$n_train_pairs, 12 * 11)
  expect_equal(cge$n_validation_pairs, 0)
  expect_true(all(cge$train_pairs %in% 1:12))
  by_label <- fit_connectivity(s$expr, conn, s$coords, model = "bilinear", iterations = 50,
                               train_regions = rownames(s$expr)[1:12], validation_fraction = 0.25)
  expect_identical(by_label$train_pairs, fit$train_pairs)
  expect_error(fit_connectivity(s$expr, conn, model = "cge_linear", train_regions = 50), "`train_regions`")
  expect_error(fit_connectivity(s$expr, conn, model = "cge_linear", validation_fraction = 2),
               "`validation_fraction`")
})

test_that("predict_connectivity() handles dropped regions and new expression", {
  s <- planted_regions(n = 12)
  conn <- 0.3 + 2 * exp(-s$d / 20)
  expr <- s$expr
  expr[4, ] <- NA
  fit <- fit_connectivity(expr, conn, s$coords, model = "distance_decay")
  pred <- predict_connectivity(fit)
  expect_equal(dim(pred), c(12L, 12L))
  expect_true(all(is.na(pred[4, ])) && all(is.na(pred[, 4])) && all(is.na(diag(pred))))
  expect_equal(sum(!is.na(pred)), 11 * 10)
  new <- predict_connectivity(fit, s$expr[1:5, ], s$coords[1:5, ])
  expect_equal(dim(new), c(5L, 5L))
  expect_equal(new[1, 2], pred[1, 2])
  expect_error(predict_connectivity(fit, s$expr[, 1:3], s$coords), "lacks 7 gene")
  path <- tempfile(fileext = ".rds")
  save_connectivity(fit, path)
  expect_identical(predict_connectivity(load_connectivity(path)), pred)
  bad <- tempfile(fileext = ".rds")
  saveRDS(list(a = 1), bad)
  expect_error(load_connectivity(bad), "not a connectivity model file")
  expect_error(predict_connectivity(list()), "`fit`")
})

test_that("region-level CV never trains on a test region and the null is near 0", {
  s <- planted_regions(n = 30, g = 20, seed = 4)
  conn <- 1 + 2 * cor(t(s$expr))
  cv <- cross_validate_connectivity(s$expr, conn, s$coords, models = c("cge_linear", "distance_decay"),
                                    scheme = c("random", "spatial"), folds = 3, permuted_null = "cge_linear")
  expect_s3_class(cv, "exprflow_connectivity_cv")
  expect_equal(nrow(cv), 2 * 3 * 3)  # 2 schemes x (2 models + 1 null) x 3 folds
  folds <- attr(cv, "folds")
  for (sch in names(folds)) {
    expect_setequal(unlist(folds[[sch]]), 1:30)
    expect_false(anyDuplicated(unlist(folds[[sch]])) > 0)
  }
  pairs <- attr(cv, "train_pairs")
  for (key in names(pairs)) {
    parts <- strsplit(key, ":")[[1]]
    held <- folds[[parts[2]]][[as.integer(parts[4])]]
    expect_false(any(pairs[[key]] %in% held))
    expect_equal(nrow(pairs[[key]]), (30 - length(held)) * (29 - length(held)))
  }
  real <- cv[cv$model == "cge_linear" & !cv$null, ]
  null <- cv[cv$model == "cge_linear" & cv$null, ]
  expect_true(all(real$pearson > 0.99))
  expect_lt(abs(mean(null$pearson)), 0.2)
  expect_equal(real$n_test_pairs[1], 30 * 29 - (30 - 10) * (29 - 10))
  expect_identical(unique(cv$test_pairs), "any")
  s_tab <- summary(cv)
  expect_equal(nrow(s_tab), 6L)
  expect_output(print(s_tab), "permuted null")
})

test_that("test_pairs = 'both' scores only pairs of two held-out regions, from the same fits", {
  s <- planted_regions(n = 12, g = 6, seed = 6)
  conn <- 1 + 2 * cor(t(s$expr))
  cv <- cross_validate_connectivity(s$expr, conn, models = "cge_linear", folds = 3, permuted_null = FALSE,
                                    test_pairs = c("any", "both"))
  expect_equal(nrow(cv), 6L)
  both <- cv[cv$test_pairs == "both", ]
  any <- cv[cv$test_pairs == "any", ]
  expect_equal(both$n_test_pairs, rep(4 * 3, 3))
  expect_equal(any$n_test_pairs, rep(12 * 11 - 8 * 7, 3))
  expect_identical(both$train_seconds, any$train_seconds)
  expect_true(all(both$pearson > 0.99))
  expect_equal(nrow(summary(cv)), 2L)
})

test_that("spatial folds are contiguous patches", {
  set.seed(5)
  coords <- rbind(matrix(rnorm(30, mean = -50), 10, 3), matrix(rnorm(30, mean = 50), 10, 3))
  expr <- matrix(runif(20 * 5), 20, 5, dimnames = list(NULL, paste0("g", 1:5)))
  conn <- as.matrix(dist(coords))
  cv <- cross_validate_connectivity(expr, conn, coords, models = "cge_linear", scheme = "spatial", folds = 2,
                                    permuted_null = FALSE)
  expect_setequal(lapply(attr(cv, "folds")$spatial, sort), list(1:10, 11:20))
})

test_that("cross_validate_connectivity() checks its arguments", {
  s <- planted_regions(n = 10)
  conn <- as.matrix(dist(s$coords))
  expect_error(cross_validate_connectivity(s$expr, conn, models = "distance_decay"), "needs region coordinates")
  expect_error(cross_validate_connectivity(s$expr, conn, models = "cge_linear", folds = 20), "`folds`")
  expect_error(cross_validate_connectivity(s$expr, conn, models = "cge_linear", permuted_null = "bilinear"),
               "`permuted_null`")
  expect_error(cross_validate_connectivity(s$expr, conn, models = "cge_linear", d_model = 4), "model_args")
  expect_error(cross_validate_connectivity(s$expr, conn, models = "cge_linear", model_args = list(x = 1)),
               "`model_args`")
  expect_error(cross_validate_connectivity(s$expr, conn, s$coords, models = "cge_linear", scheme = "grid"),
               "should be one of")
})
