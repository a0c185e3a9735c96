test_that("token loadings have one row per token and one column per gene", {
  model <- tiny_model()
  weights <- token_loadings(model)
  expect_identical(dim(weights), c(4L, length(model$genes)))
  expect_identical(colnames(weights), model$genes)
  expect_identical(rownames(weights), paste0("token_", 1:4))
  expect_true(all(weights >= 0))
  gradient <- token_loadings(model, pbmc_sce()[, 1:50], method = "gradient")
  expect_identical(dim(gradient), dim(weights))
  expect_true(all(is.finite(gradient)))
  expect_true(any(gradient > 0) && any(gradient < 0))
  expect_error(token_loadings(model, method = "gradient"), "`x`")
})

test_that("token activations are norms, and their condition means add up", {
  model <- tiny_model()
  cells <- pbmc_sce()[, 1:200]
  activations <- token_activations(model, cells)
  expect_identical(dim(activations), c(200L, 4L))
  expect_true(all(activations > 0))
  by_type <- token_activations(model, cells, condition = "cell_type")
  expect_setequal(levels(by_type$condition), levels(droplevels(cells$cell_type)))
  for (token in colnames(activations)) {
    rows <- by_type[by_type$token == token, ]
    expect_equal(sum(rows$n_cells), 200)
    # The cell-weighted mean of the level means is the overall mean.
    expect_equal(sum(rows$n_cells * rows$mean_activation) / 200, mean(activations[, token]))
    expect_equal(sum(rows$n_cells * rows$z_score), 0, tolerance = 1e-8)
  }
})

test_that("token_enrichment finds a gene set planted in a token's top genes", {
  model <- tiny_model()
  genes <- model$genes
  loadings <- matrix(runif(2 * length(genes), 0, 0.1), 2, dimnames = list(c("token_1", "token_2"), genes))
  planted <- genes[seq(1, 400, by = 10)]                    # 40 genes
  loadings[1, planted] <- 1
  sets <- list(PLANTED = planted, OTHER = genes[seq(2, 400, by = 10)])
  res <- token_enrichment(model, sets, loadings = loadings, n_top = 40)
  first <- res[res$token == "token_1", ][1, ]
  expect_identical(first$gene_set, "PLANTED")
  expect_equal(first$overlap, 40)
  expect_lt(first$p_adjusted, 1e-20)
  expect_true(all(res$p_adjusted[res$token == "token_2"] > 0.01))
  negative <- token_enrichment(model, sets, loadings = -loadings, n_top = 40, direction = "negative")
  expect_identical(negative$gene_set[negative$token == "token_1"][1], "PLANTED")
})

test_that("token_enrichment reads Hallmark sets for a trained model", {
  path <- shared_data_dir("genesets_msigdb", "human_hallmark_v2025.gmt")
  res <- token_enrichment(tiny_model(), path, n_top = 50)
  expect_true(all(c("token", "gene_set", "p_value", "p_adjusted") %in% names(res)))
  expect_true(all(res$p_adjusted >= res$p_value - 1e-12))
  expect_error(token_enrichment(tiny_model(), path, n_top = 5000), "n_top")
})
