# Neural connectivity models through the R API: every pooling and CLS mode,
# gene vectors, attention maps, save / load, and region-level CV.

tiny_brain <- function(n = 8, g = 20, seed = 1) {
  set.seed(seed)
  labels <- paste0("region", seq_len(n))
  expr <- matrix(runif(n * g), n, g, dimnames = list(labels, paste0("GENE", seq_len(g))))
  coords <- matrix(rnorm(n * 3, sd = 20), n, 3, dimnames = list(labels, c("x", "y", "z")))
  conn <- 0.5 + 0.5 * cor(t(expr))
  diag(conn) <- 0
  list(expr = expr, conn = conn, coords = coords)
}

tiny <- list(d_model = 8, n_layers = 1, n_heads = 2, head_hidden = "16", mlp_ratio = 2)

fit_tiny <- function(b, ..., model = "cross_attention", epochs = 2, gene2vec = NULL, expr = b$expr) {
  args <- utils::modifyList(tiny, list(...))
  suppressMessages(do.call(fit_connectivity, c(list(expr, b$conn, b$coords, gene2vec = gene2vec, model = model,
                                                    epochs = epochs, batch_size = 16, patience = 5,
                                                    verbose = FALSE), args)))
}

test_that("the registry lists neural models and baselines with the seed defaults", {
  models <- connectivity_models()
  expect_true(all(c("cross_attention", "self_attention_chunks", "self_attention_chunks_pooled",
                    "gene_self_attention", "cge_linear", "distance_decay", "bilinear") %in% models))
  # The C++ registry also holds the bilinear baseline: listed once, with the baselines, last.
  expect_false(anyDuplicated(models) > 0)
  expect_identical(utils::tail(models, 3), c("cge_linear", "distance_decay", "bilinear"))
  d <- connectivity_defaults("cross_attention")
  expect_equal(d$spec$d_model, 128)
  expect_equal(d$spec$n_bins, 5)
  expect_equal(d$spec$n_layers, 4)
  expect_identical(d$spec$pooling, "mean")
  expect_equal(d$training$batch_size, 512)
  expect_error(connectivity_defaults("transformer"), "unknown connectivity model 'transformer'")
  expect_error(fit_connectivity(tiny_brain()$expr, tiny_brain()$conn, model = "nope"), "valid: ")
})

test_that("cross_attention trains and predicts with every pooling and CLS mode", {
  b <- tiny_brain()
  b$expr[3, ] <- NA
  for (pooling in c("mean", "attention", "cls")) {
    for (cls in c("random", "spatial")) {
      fit <- fit_tiny(b, pooling = pooling, cls = cls, n_cls = if (cls == "random") 2 else 1)
      expect_s3_class(fit, "exprflow_connectivity")
      expect_identical(fit$spec$pooling, pooling)
      expect_identical(fit$spec$cls, cls)
      expect_equal(nrow(fit$history), 2L)
      expect_true(all(is.finite(fit$history$train_loss)))
      pred <- predict_connectivity(fit)
      expect_equal(dim(pred), c(8L, 8L))
      expect_identical(rownames(pred), rownames(b$expr))
      expect_true(all(is.na(pred[3, ])) && all(is.na(pred[, 3])) && all(is.na(diag(pred))))
      expect_true(all(is.finite(pred[-3, -3][row(pred[-3, -3]) != col(pred[-3, -3])])))
    }
  }
})

test_that("the comparison models and the model options train", {
  b <- tiny_brain()
  for (m in c("self_attention_chunks", "self_attention_chunks_pooled", "gene_self_attention")) {
    fit <- fit_tiny(b, model = m, chunk_size = if (m != "gene_self_attention") 8)
    pred <- predict_connectivity(fit)
    expect_equal(sum(is.finite(pred)), 8 * 7, info = m)
  }
  fit <- fit_tiny(b, bidirectional = 1, learned_bins = 1, alibi = 1, n_bins = 3)
  pred <- predict_connectivity(fit)
  expect_equal(pred, t(pred), tolerance = 1e-5)  # bidirectional: symmetric predictions
  expect_error(fit_tiny(b, not_a_setting = 1), "not_a_setting")
  expect_error(suppressMessages(fit_connectivity(b$expr, b$conn, cls = "spatial", epochs = 1, verbose = FALSE,
                                                d_model = 8, n_layers = 1, n_heads = 2)), "coord")
})

test_that("training is seeded and lowers the loss", {
  b <- tiny_brain(n = 10)
  a <- fit_tiny(b, epochs = 3)
  expect_identical(predict_connectivity(a), predict_connectivity(fit_tiny(b, epochs = 3)))
  expect_false(identical(predict_connectivity(a), predict_connectivity(fit_tiny(b, epochs = 3, seed = 2))))
  long <- suppressMessages(fit_connectivity(b$expr, b$conn, model = "cross_attention", epochs = 25,
                                            batch_size = 16, patience = 0, learning_rate = 3e-3,
                                            verbose = FALSE, d_model = 8, n_layers = 1, n_heads = 2,
                                            head_hidden = "16", dropout = 0))
  expect_lt(utils::tail(long$history$train_loss, 1), long$history$train_loss[1])
})

test_that("gene vectors: missing genes are learned or dropped, with a message", {
  b <- tiny_brain()
  vectors <- matrix(rnorm(12 * 6), 12, 6, dimnames = list(c(paste0("GENE", 1:11), "OTHER"), NULL))
  expect_message(fit_connectivity(b$expr, b$conn, gene2vec = vectors, epochs = 1, verbose = FALSE,
                                  d_model = 8, n_layers = 1, n_heads = 2, head_hidden = "16"),
                 "11 of 20 genes have a vector; 9 get a learned vector")
  learn <- fit_tiny(b, gene2vec = vectors)
  expect_equal(sum(learn$gene_has_vector), 11)
  expect_length(learn$genes, 20)
  expect_message(drop <- fit_connectivity(b$expr, b$conn, gene2vec = vectors, missing_genes = "drop", epochs = 1,
                                          verbose = FALSE, d_model = 8, n_layers = 1, n_heads = 2,
                                          head_hidden = "16"),
                 "9 without one are dropped")
  expect_identical(drop$genes, paste0("GENE", 1:11))
  expect_equal(ncol(drop$expression), 11L)
  expect_equal(dim(predict_connectivity(drop)), c(8L, 8L))
  expect_error(fit_tiny(b, gene2vec = "x"), "`gene2vec`")
  expect_output(print(learn), "11 with a given vector, 9 learned")
})

test_that("connectivity_attention() gives one row per query and rows sum to 1", {
  b <- tiny_brain()
  fit <- fit_tiny(b, n_cls = 2, n_layers = 2)
  a <- connectivity_attention(fit, "region1", "region2", layer = 2)
  expect_equal(dim(a), c(22L, 20L))
  expect_identical(rownames(a)[1:3], c("CLS1", "CLS2", "GENE1"))
  expect_identical(colnames(a), colnames(b$expr))
  expect_equal(unname(rowSums(a)), rep(1, 22), tolerance = 1e-5)
  expect_error(connectivity_attention(fit, 1, 2, layer = 3), "layer")
  expect_error(connectivity_attention(fit, 1, 99), "`j`")
  base <- fit_connectivity(b$expr, b$conn, model = "cge_linear")
  expect_error(connectivity_attention(base, 1, 2), "no attention maps")
})

test_that("save_connectivity() / load_connectivity() give identical predictions", {
  b <- tiny_brain()
  b$expr[5, ] <- NA
  fit <- fit_tiny(b, cls = "spatial", pooling = "attention")
  path <- tempfile(fileext = ".rds")
  save_connectivity(fit, path)
  restored <- load_connectivity(path)
  expect_identical(predict_connectivity(restored), predict_connectivity(fit))
  expect_identical(restored$genes, fit$genes)
  expect_equal(restored$history, fit$history)
  # A fit saved with plain saveRDS() rebuilds itself from its own bytes, whatever
  # happens to the file save_connectivity() wrote: it is always itself.
  plain <- tempfile(fileext = ".rds")
  other <- fit_tiny(b, seed = 2)
  saveRDS(fit, plain)
  save_connectivity(other, path)
  expect_identical(predict_connectivity(readRDS(plain)), predict_connectivity(fit))
  unlink(path)
  copy <- readRDS(plain)
  expect_identical(predict_connectivity(copy), predict_connectivity(fit))
  # ... and a copy saved again with save_connectivity() is still itself.
  save_connectivity(readRDS(plain), path)
  expect_identical(predict_connectivity(load_connectivity(path)), predict_connectivity(fit))
  # Corrupt bytes are refused with an error naming the file.
  content <- readRDS(path)
  middle <- length(content$model_file) %/% 2
  content$model_file[middle] <- xor(content$model_file[middle], as.raw(0xff))
  saveRDS(content, path)
  expect_error(load_connectivity(path), "checksum|corrupt")
})

test_that("fits are S3 classes by model; files of earlier versions load with them", {
  b <- tiny_brain()
  base <- fit_connectivity(b$expr, b$conn, b$coords, model = "distance_decay", verbose = FALSE)
  expect_identical(class(base), c("exprflow_connectivity_distance_decay", "exprflow_connectivity"))
  expect_output(print(base), "fit        : .* \\* exp\\(-d / ")
  neural <- fit_tiny(b)
  expect_identical(class(neural), c("exprflow_connectivity_cross_attention", "exprflow_connectivity_neural",
                                    "exprflow_connectivity_cpp", "exprflow_connectivity"))
  path <- tempfile(fileext = ".rds")
  save_connectivity(base, path)
  # As an earlier exprflow wrote it: one class, a `kind` field, plain parameters.
  content <- readRDS(path)
  content$fit <- structure(c(unclass(content$fit), kind = "baseline"), class = "exprflow_connectivity")
  class(content$fit$baseline) <- "exprflow_connectivity_baseline"
  saveRDS(content, path)
  old <- load_connectivity(path)
  expect_identical(class(old), class(base))
  expect_null(old$kind)
  expect_identical(predict_connectivity(old), predict_connectivity(base))
})

test_that("region-level CV of a neural model never trains on a test region", {
  b <- tiny_brain(n = 10)
  cv <- cross_validate_connectivity(b$expr, b$conn, b$coords, models = c("cross_attention", "cge_linear"),
                                    folds = 2, permuted_null = "cross_attention",
                                    model_args = list(cross_attention = tiny), epochs = 1, batch_size = 16)
  expect_equal(nrow(cv), 3L * 2L)
  folds <- attr(cv, "folds")$random
  for (key in grep("^cross_attention", names(attr(cv, "train_pairs")), value = TRUE)) {
    held <- folds[[as.integer(strsplit(key, ":")[[1]][4])]]
    expect_false(any(attr(cv, "train_pairs")[[key]] %in% held))
  }
  expect_true(all(is.finite(cv$mse)))
  expect_equal(cv$n_test_pairs, rep(10 * 9 - 5 * 4, 6))
})
