# perturbation_metrics() and perturbation_shift() on Poisson counts with a
# known response: genes 1-20 four times higher after the perturbation.

poisson_cells <- function(rate, n, prefix) {
  m <- matrix(stats::rpois(length(rate) * n, rate), nrow = length(rate),
              dimnames = list(paste0("g", seq_along(rate)), paste0(prefix, seq_len(n))))
  storage.mode(m) <- "double"
  m
}

perturbation_fixture <- function() {
  set.seed(11)
  base <- stats::rgamma(200, shape = 2, rate = 0.5)
  response <- ifelse(seq_along(base) <= 20, 4, 1)
  list(control = poisson_cells(base, 120, "c"), real = poisson_cells(base * response, 100, "p"),
       fresh = poisson_cells(base * response, 100, "q"), base = base, response = response)
}

test_that("a fresh draw of the perturbed population beats control cells and finds the true DEGs", {
  f <- perturbation_fixture()
  out <- perturbation_metrics(f$real, list(fresh = f$fresh), f$control, top_k = 20)
  value <- function(prediction, metric) out$value[out$prediction == prediction & out$metric == metric]
  expect_setequal(unique(out$prediction), c("fresh", "control"))
  expect_gte(mean(as.integer(sub("g", "", attr(out, "degs"))) <= 20), 0.9)
  expect_gt(value("fresh", "pearson_delta_deg"), 0.9)
  expect_gt(value("fresh", "pearson_delta"), 0.8)
  expect_gte(value("fresh", "deg_overlap"), 0.8)
  expect_gt(value("fresh", "r2_mean_deg"), value("control", "r2_mean_deg"))
  expect_lt(value("fresh", "energy_distance"), value("control", "energy_distance") / 5)
  expect_lt(value("fresh", "mmd_rbf"), value("control", "mmd_rbf"))
  # Control cells have no response: the response scores do not apply.
  expect_true(is.na(value("control", "pearson_delta")))
  expect_true(is.na(value("control", "deg_overlap")))
  expect_equal(value("fresh", "r2_mean"), value("fresh", "pearson_mean")^2)
  # The means' correlation, computed here on the log scale.
  log_mean <- function(m) rowMeans(log1p(t(t(m) / colSums(m)) * 1e4))
  expect_equal(value("fresh", "pearson_mean"), stats::cor(log_mean(f$fresh), log_mean(f$real)))
  expect_false(any(out$lower_is_better[out$metric %in% c("pearson_delta", "deg_overlap")]))
  expect_true(all(out$lower_is_better[out$metric %in% c("energy_distance", "mmd_rbf")]))
})

test_that("a small panel whose genes do not all vary gets fewer components, not an error", {
  set.seed(3)
  rate <- c(stats::rgamma(20, shape = 2, rate = 0.5), rep(0, 10))  # genes 21-30 never expressed
  real <- poisson_cells(rate * 2, 10, "p")
  control <- poisson_cells(rate, 12, "c")
  out <- perturbation_metrics(real, poisson_cells(rate * 2, 8, "q"), control, top_k = 5, n_pcs = 25)
  expect_true(all(is.finite(out$value[out$metric == "energy_distance"])))
})

test_that("the mean-shift and additive baselines shift control cells by the responses they are given", {
  f <- perturbation_fixture()
  shift <- perturbation_shift(f$real, f$control)
  expect_named(shift, rownames(f$real))
  log_mean <- function(m) rowMeans(log1p(t(t(m) / colSums(m)) * 1e4))
  expect_equal(shift, log_mean(f$real) - log_mean(f$control))
  # Several groups: the average of their shifts.
  half <- perturbation_shift(list(f$real, f$fresh), list(f$control, f$control))
  expect_equal(half, (shift + perturbation_shift(f$fresh, f$control)) / 2)

  out <- perturbation_metrics(f$real, NULL, f$control, top_k = 20, training_shift = half,
                              singles = list(f$fresh, f$control))
  value <- function(prediction, metric) out$value[out$prediction == prediction & out$metric == metric]
  expect_setequal(unique(out$prediction), c("control", "mean_shift", "additive"))
  # The additive baseline of (perturbed, nothing) is the perturbed response.
  expect_gt(value("additive", "pearson_delta_deg"), 0.9)
  expect_gt(value("mean_shift", "pearson_delta_deg"), 0.9)
  expect_lt(value("mean_shift", "energy_distance"), value("control", "energy_distance"))
  # A shift that is zero is the control baseline again.
  zero <- stats::setNames(numeric(nrow(f$real)), rownames(f$real))
  again <- perturbation_metrics(f$real, NULL, f$control, top_k = 20, training_shift = zero)
  expect_equal(again$value[again$prediction == "mean_shift"], again$value[again$prediction == "control"])
})

test_that("perturbation_shift() can weigh groups by how alike their control cells are to the reference's", {
  f <- perturbation_fixture()
  set.seed(12)
  other_base <- stats::rgamma(200, shape = 2, rate = 0.5)  # another starting state
  other_response <- ifelse(seq_along(other_base) %in% 21:40, 4, 1)  # that moves other genes
  other_control <- poisson_cells(other_base, 120, "o")
  other_real <- poisson_cells(other_base * other_response, 100, "r")
  reference <- poisson_cells(other_base, 80, "n")  # a new group starting where the other one does
  perturbed <- list(f$real, f$fresh, other_real)
  control <- list(f$control, f$control, other_control)
  equal <- perturbation_shift(perturbed, control)
  expect_identical(perturbation_shift(perturbed, control, reference = reference, bandwidth = Inf), equal)
  expect_identical(perturbation_shift(perturbed, control, bandwidth = 0.1), equal)  # no reference: all alike
  near <- perturbation_shift(perturbed, control, reference = reference, bandwidth = 0.1)
  # The closed form: Gaussian weights of the distances between control means.
  log_mean <- function(m) rowMeans(log1p(t(t(m) / colSums(m)) * 1e4))
  controls <- sapply(control, log_mean)
  d2 <- colSums((controls - log_mean(reference))^2)
  h <- 0.1 * stats::median(stats::dist(t(controls)))
  w <- exp(-(d2 - min(d2)) / (2 * h^2))
  shifts <- mapply(function(p, c) log_mean(p) - log_mean(c), perturbed, control)
  expect_equal(unname(near), unname(drop(shifts %*% w) / sum(w)))
  # The reference's neighbour's response alone: genes 21-40 move, 1-20 do not.
  expect_lt(max(abs(near - shifts[, 3])), 1e-3)
  expect_gt(mean(near[21:40]), 1)
  expect_gt(mean(equal[1:20]), 0.5)
  expect_error(perturbation_shift(perturbed, control, reference = reference, bandwidth = 0), "`bandwidth` must be")
  expect_error(perturbation_shift(perturbed, control, reference = reference[1:10, ]), "`reference`")
})

test_that("perturbation_metrics() names the argument that is wrong", {
  f <- perturbation_fixture()
  expect_error(perturbation_metrics(f$real, f$fresh, f$control, top_k = 500), "`top_k` \\(500\\) must be at most")
  expect_error(perturbation_metrics(f$real, f$fresh[1:50, ], f$control), "`predicted` must hold the same genes")
  expect_error(perturbation_metrics(f$real, list(a = f$fresh, f$fresh), f$control), "one unique name")
  expect_error(perturbation_metrics(f$real, list(control = f$fresh), f$control), "kept for the baselines")
  expect_error(perturbation_metrics(f$real, f$fresh, f$control, training_shift = c(g1 = 1)),
               "`training_shift` lacks 199 of the 200 genes")
  expect_error(perturbation_metrics(f$real, f$fresh, f$control, singles = list(f$fresh)), "`singles` must be a list")
  expect_error(perturbation_metrics(f$real, f$fresh, f$control[, 1, drop = FALSE]), "`control` has 1 cell")
  expect_error(perturbation_shift(list(f$real, f$fresh), list(f$control)), "same number of groups \\(2 and 1\\)")
})
