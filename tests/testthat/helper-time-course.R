# A toy time course shared by the dynamics tests.

# Two clusters (at x1 = -3 and +3) that move together along x2, 4 units per
# 24 h, in 10 dimensions of log-like values (shifted to stay positive).
moving_clusters <- function(times = c(0, 24, 48), per_time = 80, seed = 1) {
  set.seed(seed)
  cells <- lapply(times, function(t) {
    values <- matrix(stats::rnorm(10 * per_time, sd = 0.3), 10, per_time)
    values[1, ] <- values[1, ] + rep(c(-3, 3), length.out = per_time)
    values[2, ] <- values[2, ] + 4 * t / 24
    values + 10
  })
  values <- do.call(cbind, cells)
  rownames(values) <- paste0("g", 1:10)
  list(values = values, time = rep(times, each = per_time))
}
