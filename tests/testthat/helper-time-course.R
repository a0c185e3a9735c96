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

# Courses of moving_clusters() in one SingleCellExperiment (assay
# `logcounts`, colData `hours` and `course`): "up" (x2 rises 4 per 24 h),
# "down" (x2 falls as much) and "start" (observed at 0 h only).
course_cells <- function(up_times, down_times, per_time, start_cells) {
  up <- moving_clusters(times = up_times, per_time = per_time, seed = 1)
  down <- moving_clusters(times = down_times, per_time = per_time, seed = 2)
  down$values[2, ] <- 20 - down$values[2, ]
  start <- moving_clusters(times = 0, per_time = start_cells, seed = 3)
  values <- cbind(up$values, down$values, start$values)
  colnames(values) <- paste0("cell", seq_len(ncol(values)))
  SingleCellExperiment::SingleCellExperiment(
    list(logcounts = values),
    colData = S4Vectors::DataFrame(hours = c(up$time, down$time, start$time),
                                   course = rep(c("up", "down", "start"), c(length(up$time), length(down$time),
                                                                             start_cells))))
}
