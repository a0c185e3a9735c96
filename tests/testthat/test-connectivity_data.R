# Brain data readers, gene embeddings and region-pair construction.

test_that("example_brain() loads the shipped DK subset", {
  b <- example_brain("fc")
  expect_equal(dim(b$expression), c(82L, 121L))
  expect_equal(dim(b$connectivity), c(82L, 82L))
  expect_equal(dim(b$coords), c(82L, 3L))
  expect_identical(rownames(b$expression), b$regions)
  all_na <- rowSums(is.na(b$expression)) == ncol(b$expression)
  expect_identical(b$regions[all_na], c("R_frontalpole", "R_temporalpole"))
  expect_true(all(b$expression[!all_na, ] >= 0 & b$expression[!all_na, ] <= 1))
  expect_equal(unname(diag(b$connectivity)), rep(0, 82))
  ctx <- example_brain("sc", subcortex = FALSE)
  expect_equal(dim(ctx$connectivity), c(68L, 68L))
  expect_identical(ctx$modality, "sc")
  expect_error(example_brain(subcortex = NA), "`subcortex`")
})

test_that("read_brain_data() reads the shared AHBA/HCP files", {
  dir <- shared_data_dir("brain_ahba_hcp")
  dk <- read_brain_data(dir, "dk", "fc")
  expect_equal(dim(dk$expression), c(68L, 1645L))
  expect_equal(dim(dk$connectivity), c(68L, 68L))
  expect_identical(colnames(dk$coords), c("x", "y", "z"))
  expect_identical(rownames(dk$expression)[1], "L_bankssts")
  sc <- read_brain_data(file.path(dir, "dk"), "dk", "sc", subcortex = TRUE, stability = "0.8")
  expect_equal(dim(sc$expression), c(82L, 121L))
  expect_equal(sum(rowSums(is.na(sc$expression)) == 121L), 2L)
  expect_identical(sc$connectivity, example_brain("sc")$connectivity)
  expect_identical(sc$expression, example_brain("sc")$expression)
  s100 <- read_brain_data(dir, "schaefer100", "fc", subcortex = TRUE)
  expect_equal(dim(s100$expression), c(114L, 810L))
  expect_equal(dim(s100$connectivity), c(114L, 114L))
  expect_identical(rownames(s100$connectivity), rownames(s100$expression))
  expect_error(read_brain_data(dir, "schaefer100", stability = "0.8"), "`stability`")
  expect_error(read_brain_data(file.path(tempdir(), "nope"), "dk"), "does not exist")
})

write_lines <- function(lines) {
  path <- tempfile(fileext = ".txt")
  writeLines(lines, path)
  path
}

test_that("read_gene2vec() reads the text format with and without a header", {
  with_header <- read_gene2vec(write_lines(c("3 4", "CD3D 0.1 0.2 0.3 0.4", "MS4A1\t-1 0 1e-2 2",
                                             "", "NKG7 1 1 1 1")))
  expect_equal(dim(with_header), c(3L, 4L))
  expect_identical(rownames(with_header), c("CD3D", "MS4A1", "NKG7"))
  expect_equal(with_header["MS4A1", ], c(-1, 0, 0.01, 2))
  plain <- read_gene2vec(write_lines(c("CD3D 0.1 0.2 0.3 0.4", "MS4A1 -1 0 1e-2 2", "NKG7 1 1 1 1")))
  expect_identical(plain, with_header)
})

test_that("read_gene2vec() names the line of a malformed file", {
  expect_error(read_gene2vec(write_lines(c("2 3", "A 1 2 3", "B 1 2"))),
               "line 3 .*2 value\\(s\\) for gene 'B', expected 3")
  expect_error(read_gene2vec(write_lines(c("A 1 2 3", "B 1 2 3", "C 1 x 3"))),
               "line 3 .*'x' for gene 'C' is not a finite decimal number")
  expect_error(read_gene2vec(write_lines(c("A 1 2", "B 1 2", "A 3 4"))), "line 3 .*gene 'A' was already listed")
  expect_error(read_gene2vec(write_lines(character())), "is empty")
  expect_error(read_gene2vec(write_lines(c("", "  "))), "is empty")
  expect_error(read_gene2vec(write_lines(c("5 2", "A 1 2", "B 1 2"))), "announces 5 genes but the file lists 2")
  expect_error(read_gene2vec(file.path(tempdir(), "missing.txt")), "does not exist")
  # Only plain finite decimals: no overflow to Inf, no hexadecimal, no NaN.
  for (value in c("1e400", "0x1A", "NaN", "-Inf", "1,5")) {
    expect_error(read_gene2vec(write_lines(c("A 1 2", paste("B 1", value)))),
                 sprintf("line 2 .*'%s' for gene 'B' is not a finite decimal number", value), fixed = FALSE)
  }
})

test_that("gene_embeddings_coexpression() places co-expressed genes together", {
  set.seed(3)
  cells <- 300
  program <- rbinom(cells, 1, 0.5)
  # Module A follows `program`, module B its opposite, C is noise.
  rate <- rbind(matrix(rep(1 + 8 * program, each = 4), 4),
                matrix(rep(1 + 8 * (1 - program), each = 4), 4),
                matrix(3, 4, cells))
  counts <- matrix(rpois(length(rate), rate), nrow(rate), dimnames = list(paste0("G", 1:12), NULL))
  expect_message(emb <- gene_embeddings_coexpression(counts, dim = 5, genes = c(paste0("G", 1:12), "ABSENT")),
                 "12 of 13 genes have a vector; 1 have none")
  expect_equal(dim(emb), c(13L, 5L))
  expect_identical(rownames(emb), c(paste0("G", 1:12), "ABSENT"))
  expect_true(all(is.na(emb["ABSENT", ])))
  cosine <- function(a, b) sum(a * b) / sqrt(sum(a^2) * sum(b^2))
  expect_gt(cosine(emb["G1", ], emb["G2", ]), 0.9)
  expect_lt(cosine(emb["G1", ], emb["G5", ]), -0.5)
  # Rows reproduce the correlation matrix when dim covers its rank.
  full <- gene_embeddings_coexpression(counts, dim = 12)
  logn <- log1p(t(t(counts) / colSums(counts)) * 1e4)
  expect_equal(unname(tcrossprod(full)), unname(cor(t(logn))), tolerance = 1e-6)
  expect_true(all(rowSums(full^2) <= 1 + 1e-8))
  expect_error(gene_embeddings_coexpression(counts, dim = 0), "`dim`")
  expect_error(gene_embeddings_coexpression("x"), "`x` must be")
})

test_that("gene_embeddings_gene_sets() places genes of shared sets together", {
  sets <- list(S1 = c("A", "B", "C"), S2 = c("A", "B"), S3 = c("D", "E"), S4 = c("E", "F", "D"),
               S5 = c("C", "F"))
  expect_message(emb <- gene_embeddings_gene_sets(sets, genes = c("B", "A", "D", "Z"), dim = 8),
                 "3 of 4 genes have a vector; 1 have none")
  expect_equal(dim(emb), c(4L, 8L))
  expect_identical(rownames(emb), c("B", "A", "D", "Z"))
  expect_true(all(emb[1:3, 6:8] == 0))  # 6 genes x 5 sets has rank <= 5: padded with zeros
  cosine <- function(a, b) sum(a * b) / sqrt(sum(a^2) * sum(b^2))
  expect_gt(cosine(emb["A", ], emb["B", ]), 0.99)
  expect_lt(abs(cosine(emb["A", ], emb["D", ])), 0.1)
  all_genes <- gene_embeddings_gene_sets(sets, dim = 5)
  expect_identical(rownames(all_genes), LETTERS[1:6])
  expect_equal(unname(all_genes[c("B", "A", "D"), ]), unname(emb[1:3, 1:5]))
  expect_error(gene_embeddings_gene_sets(list(c("A"))), "`gene_sets`")
})

test_that("connectivity_pairs() builds every ordered pair and maps back", {
  set.seed(1)
  n <- 7
  expr <- matrix(runif(n * 4), n, 4, dimnames = list(paste0("r", 1:n), paste0("g", 1:4)))
  expr[3, ] <- NA
  conn <- matrix(seq_len(n * n) / 10, n, n)
  conn[5, 6] <- NA
  coords <- matrix(rnorm(n * 3), n, 3)
  p <- connectivity_pairs(expr, conn, coords)
  expect_s3_class(p, "exprflow_region_pairs")
  expect_identical(p$region_index, c(1L, 2L, 4L, 5L, 6L, 7L))
  expect_identical(p$dropped, 3L)
  m <- 6
  expect_equal(length(p$i), m * (m - 1) - 1)  # n(n-1) ordered pairs minus the NA target
  expect_false(any(p$i == p$j))
  df <- as.data.frame(p)
  expect_true(all(paste(df$j, df$i) %in% paste(df$i, df$j) | (df$i == 6 & df$j == 5)))
  expect_false(any(df$i == 5 & df$j == 6))
  expect_equal(df$target, conn[cbind(df$i, df$j)])
  expect_equal(p$expression, expr[-3, ])
  expect_equal(p$coords, coords[-3, ])
  expect_identical(df$label_i, rownames(expr)[df$i])
  back <- pairs_to_matrix(p, p$target)
  expect_equal(dim(back), c(n, n))
  expect_true(all(is.na(diag(back))))
  expect_true(all(is.na(back[3, ])) && all(is.na(back[, 3])))
  expect_true(is.na(back[5, 6]))
  ok <- !is.na(back)
  expect_equal(back[ok], conn[ok])
  expect_equal(sum(ok), length(p$i))
  expect_output(print(p), "6 kept of 7")
})

test_that("connectivity_pairs() scales to [0, 1] and rejects bad input", {
  expr <- cbind(a = c(1, 3, 5, 9), b = c(-2, 0, 2, 2))
  conn <- matrix(1, 4, 4)
  p <- connectivity_pairs(expr, conn)
  expect_equal(unname(p$expression[, "a"]), c(0, 0.25, 0.5, 1))
  expect_equal(unname(p$expression[, "b"]), c(0, 0.5, 1, 1))
  expect_equal(p$scaling$min, c(a = 1, b = -2))
  unit <- cbind(a = c(0.1, 0.2, 0.3), b = c(0, 1, 0.5))
  expect_null(connectivity_pairs(unit, matrix(1, 3, 3))$scaling)
  partial <- expr
  partial[2, 1] <- NA
  expect_error(connectivity_pairs(partial, conn), "missing values in 1 region")
  expect_error(connectivity_pairs(expr, matrix(1, 3, 3)), "`connectivity` must be a numeric 4 x 4")
  expect_error(connectivity_pairs(expr, conn, coords = matrix(0, 4, 2)), "`coords`")
  expect_error(connectivity_pairs(unname(expr), conn), "gene names")
  expect_error(connectivity_pairs(expr), "`connectivity`")
  infinite <- conn
  infinite[2, 3] <- Inf
  expect_error(connectivity_pairs(expr, infinite), "1 infinite or NaN value\\(s\\) \\(first at \\[2, 3\\]\\)")
  expect_error(fit_connectivity(expr, infinite, model = "cge_linear"), "infinite or NaN")
  expect_error(connectivity_pairs(expr, conn, coords = matrix(c(0, 0, Inf), 4, 3)), "`coords` has missing or infinite")
  expect_error(pairs_to_matrix(p, 1:3), "one value per pair")
  expect_error(pairs_to_matrix(list(), 1), "`pairs`")
})
