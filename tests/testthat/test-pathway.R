# Gene-set (pathway) tokens: one token per gene set of the data.

fit_pathway <- function(x = pbmc_sce()[, 1:300], gene_sets = example_gene_sets(), ...) {
  args <- utils::modifyList(list(x = x, architecture = "pathway_tokens", condition = "cell_type",
                                 gene_sets = gene_sets, epochs = 1, token_dim = 16, n_layers = 1,
                                 n_heads = 2, verbose = FALSE), list(...))
  do.call(fit_expression_model, args)
}

test_that("pathway tokens are the data's gene sets plus a residual and a summary token", {
  sets <- example_gene_sets()
  expect_length(sets, 45L)
  expect_true(all(lengths(sets) >= 5L) && all(unlist(sets) %in% rownames(pbmc_sce())))
  table <- expression_architectures()
  expect_identical(table$resources[table$name == "pathway_tokens"], "gene_sets")
  expect_identical(table$resources[table$name == "state_mlp"], "")

  model <- fit_pathway()
  expect_identical(model$token_names, c(names(sets), "residual_genes", "summary"))
  expect_identical(model$spec$summary_token, 1)
  loadings <- token_loadings(model)
  expect_identical(rownames(loadings), model$token_names)
  # Each set's token reads its own genes and no other.
  expect_true(all((loadings["HALLMARK_INTERFERON_GAMMA_RESPONSE", ] > 0) ==
                    model$genes %in% sets$HALLMARK_INTERFERON_GAMMA_RESPONSE))
  covered <- model$genes %in% unlist(sets)
  expect_true(all((loadings["residual_genes", ] > 0) == !covered))
  # The summary token reads every gene.
  expect_true(all(loadings["summary", ] > 0))
  expect_output(print(model), "45 gene sets \\(HALLMARK_.*\\) \\+ residual_genes \\+ summary")
  plain <- fit_pathway(summary_token = 0)
  expect_identical(plain$token_names, c(names(sets), "residual_genes"))
  expect_output(print(plain), "45 gene sets \\(HALLMARK_.*\\) \\+ residual_genes\n")

  activations <- token_activations(model, pbmc_sce()[, 1:20])
  expect_identical(colnames(activations), model$token_names)
  cells <- generate_cells(model, condition = c(B = 5, NK = 5), steps = 5, seed = 2)
  expect_identical(dim(cells), c(length(model$genes), 10L))
  path <- tempfile(fileext = ".exprflow")
  save_model(model, path)
  back <- load_model(path)
  expect_identical(back$token_names, model$token_names)
  expect_identical(generate_cells(back, condition = c(B = 5, NK = 5), steps = 5, seed = 2), cells)
})

test_that("gene sets are read from a GMT path and filtered by min_set_genes", {
  path <- system.file("extdata", "hallmark_pbmc_small.gmt", package = "exprflow")
  sets <- example_gene_sets()
  model <- fit_pathway(gene_sets = path, min_set_genes = 40)
  expect_identical(model$token_names, c(names(sets)[lengths(sets) >= 40], "residual_genes", "summary"))
  expect_message(fit_pathway(gene_sets = sets[1:3], verbose = TRUE),
                 "3 of 3 sets have at least 5 of the data's genes")
})

test_that("pathway_tokens explains what is missing or wrong in its gene sets", {
  x <- pbmc_sce()[, 1:100]
  expect_error(fit_expression_model(x, architecture = "pathway_tokens", epochs = 1, verbose = FALSE),
               "needs `gene_sets`")
  expect_error(fit_pathway(x, gene_sets = list(A = c("NOT_A_GENE", "CD3D"))),
               "none of the 1 sets shares at least 5 genes .* the best shares 1, and 1 of the data's genes")
  expect_error(fit_pathway(x, gene_sets = list(c("CD3D", "CD3E"))), "unique, non-empty names")
  expect_error(fit_pathway(x, gene_sets = example_gene_sets(), min_set_genes = 0), "`min_set_genes`")
  expect_error(fit_expression_model(x, architecture = "state_mlp", gene_sets = example_gene_sets(),
                                    epochs = 1, verbose = FALSE),
               "`gene_sets` is used only by architectures built on gene sets \\(.*pathway_tokens.*\\)")
})

test_that("gene_sets = \"nmf\" learns gene modules from the training cells", {
  x <- pbmc_sce()[, 1:300]
  model <- fit_pathway(x, gene_sets = "nmf", n_modules = 6)
  modules <- setdiff(model$token_names, c("residual_genes", "summary"))
  expect_true(length(modules) >= 1L && length(modules) <= 6L)
  expect_true(all(grepl("^nmf_[1-6]$", modules)))
  # Same data and seed, same modules.
  again <- fit_pathway(x, gene_sets = "nmf", n_modules = 6)
  expect_identical(token_loadings(again) > 0, token_loadings(model) > 0)
  expect_error(fit_pathway(x, gene_sets = example_gene_sets(), n_modules = 6), "only with gene_sets = \"nmf\"")
  expect_error(fit_pathway(x, gene_sets = "nmf", n_modules = 0), "`n_modules`")
})
