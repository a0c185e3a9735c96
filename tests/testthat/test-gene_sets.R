test_that("read_gmt reads names, skips descriptions and de-duplicates genes", {
  path <- tempfile(fileext = ".gmt")
  writeLines(c("SET_A\tdesc a\tG1\tG2\tG2\tG3", "", "SET_B\thttp://x\tG4\r"), path)
  sets <- read_gmt(path)
  expect_identical(names(sets), c("SET_A", "SET_B"))
  expect_identical(sets$SET_A, c("G1", "G2", "G3"))
  expect_identical(sets$SET_B, "G4")
  expect_identical(names(read_gmt(path, min_size = 2)), "SET_A")
})

test_that("read_gmt names the line of a malformed file", {
  path <- tempfile(fileext = ".gmt")
  writeLines(c("SET_A\tdesc\tG1", "SET_B only two fields\tdesc"), path)
  expect_error(read_gmt(path), "line 2 .*2 tab-separated field")
  writeLines(c("SET_A\tdesc\tG1", "SET_A\tdesc\tG2"), path)
  expect_error(read_gmt(path), "line 2 .*already used")
  writeLines(c("\tdesc\tG1"), path)
  expect_error(read_gmt(path), "line 1 .*name is empty")
  writeLines(c("SET\tdesc\t\t"), path)
  expect_error(read_gmt(path), "line 1 .*no genes")
  writeLines(character(0), path)
  expect_error(read_gmt(path), "no gene sets")
  expect_error(read_gmt(file.path(tempdir(), "missing.gmt")), "does not exist")
})

test_that("read_gmt reads the MSigDB Hallmark file", {
  sets <- read_gmt(shared_data_dir("genesets_msigdb", "human_hallmark_v2025.gmt"))
  expect_length(sets, 50)
  expect_true(all(grepl("^HALLMARK_", names(sets))))
  expect_true("CD3D" %in% sets$HALLMARK_ALLOGRAFT_REJECTION)
})

test_that("gene_set_enrichment matches a hand-computed hypergeometric p-value", {
  universe <- paste0("G", 1:100)
  sets <- list(S1 = paste0("G", 1:10), S2 = paste0("G", 50:59), OUTSIDE = c("X1", "X2"))
  res <- gene_set_enrichment(list(top = paste0("G", c(1:4, 90))), sets, universe, min_overlap = 0)
  s1 <- res[res$gene_set == "S1", ]
  expect_equal(s1$overlap, 4)
  expect_equal(s1$p_value, sum(dhyper(4:5, 10, 90, 5)))
  expect_equal(s1$expected, 5 * 10 / 100)
  expect_identical(s1$genes, "G1,G2,G3,G4")
  expect_false("OUTSIDE" %in% res$gene_set)  # no genes in the universe
  s2 <- res[res$gene_set == "S2", ]
  expect_equal(s2$p_value, 1)
  expect_equal(res$p_adjusted, p.adjust(res$p_value, "BH"))
  expect_identical(res$gene_set[1], "S1")
})

test_that("random gene lists are not enriched after correction", {
  set.seed(3)
  universe <- paste0("G", 1:2000)
  sets <- setNames(lapply(1:30, function(i) sample(universe, 40)), paste0("SET", 1:30))
  queries <- setNames(lapply(1:5, function(i) sample(universe, 50)), paste0("Q", 1:5))
  res <- gene_set_enrichment(queries, sets, universe)
  expect_true(all(res$p_adjusted > 0.05))
  planted <- list(P = c(sets$SET7[1:20], sample(universe, 30)))
  res <- gene_set_enrichment(planted, sets, universe)
  expect_identical(res$gene_set[1], "SET7")
  expect_lt(res$p_adjusted[1], 1e-10)
})

test_that("gene_set_enrichment rejects bad input", {
  expect_error(gene_set_enrichment(1:3, list(A = "G1"), "G1"), "`queries`")
  expect_error(gene_set_enrichment("G1", list("G1"), "G1"), "`gene_sets`")
  expect_error(gene_set_enrichment("G1", list(A = "G1"), character(0)), "`universe`")
  expect_error(gene_set_enrichment("G1", list(A = "X"), c("G1", "G2")), "same kind")
})
