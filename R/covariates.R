# Covariates of a model as the R functions hand them to the core: a table of
# levels (one column per covariate of the model, one row per cell, NA for
# "unknown", i.e. the covariate's null embedding), its 0-based codes, and
# guidance scales per covariate.

# A data.frame given for a model's covariates, checked: columns the model
# has, `n_rows` rows (a single row is repeated), known levels or NA. Returns
# a data.frame with every covariate of the model (absent ones NA).
# `unseen_members`: perturbation members the call may name although the
# model has no cells of them (see .perturbation_column()).
.covariate_table <- function(model, table, n_rows = NULL, arg = "condition", unseen_members = character()) {
  covariates <- model$covariates
  perturbation <- model$perturbation
  if (!is.data.frame(table)) stop(sprintf("`%s` must be a data.frame", arg), call. = FALSE)
  unknown <- setdiff(names(table), c(names(covariates), perturbation$dose_column))
  if (length(unknown)) {
    stop(sprintf("`%s` has column(s) %s, which are not covariates of the model; its covariates are: %s", arg,
                 .first_few(unknown), if (length(covariates)) .first_few(names(covariates)) else "none"),
         call. = FALSE)
  }
  if (!nrow(table)) stop(sprintf("`%s` has no rows", arg), call. = FALSE)
  if (!is.null(n_rows) && nrow(table) != n_rows) {
    if (nrow(table) != 1L) {
      stop(sprintf("`%s` has %d rows; give one row, or one per cell (%d)", arg, nrow(table), n_rows),
           call. = FALSE)
    }
    table <- table[rep(1L, n_rows), , drop = FALSE]
  }
  out <- data.frame(row.names = seq_len(nrow(table)))
  for (name in names(covariates)) {
    values <- if (name %in% names(table)) as.character(table[[name]]) else rep(NA_character_, nrow(table))
    if (identical(name, perturbation$covariate)) {
      # Combinations the model has no level for are fine (their members are
      # checked); doses are kept as text in the labels' member order.
      dose_column <- perturbation$dose_column
      labels <- .perturbation_column(model, values, if (!is.null(dose_column)) table[[dose_column]], arg,
                                     unseen_members)
      out[[name]] <- as.vector(labels)
      doses <- attr(labels, "doses")
      if (!is.null(doses)) {
        out[[dose_column]] <- vapply(seq_along(labels), function(i) {
          k <- length(.perturbation_members(labels[i], perturbation$control))
          if (k) paste(doses[i, seq_len(k)], collapse = "+") else NA_character_
        }, character(1))
      }
      next
    }
    bad <- setdiff(values[!is.na(values)], covariates[[name]])
    if (length(bad)) {
      stop(sprintf("unknown condition level(s) %s; the model knows: %s (`%s`, covariate '%s')", .first_few(bad),
                   .first_few(covariates[[name]], 50L), arg, name), call. = FALSE)
    }
    out[[name]] <- values
  }
  out
}

# One integer vector of 0-based codes (-1 for NA) per covariate of the model,
# in its order: what the core's train / generate / transfer read.
.covariate_codes <- function(model, table) {
  perturbation <- model$perturbation
  unname(lapply(names(model$covariates), function(name) {
    levels <- model$covariates[[name]]
    codes <- match(table[[name]], levels) - 1L
    if (identical(name, perturbation$covariate)) {
      # Combinations the model has no level for: codes past its levels.
      extra <- unique(table[[name]][is.na(codes) & !is.na(table[[name]])])
      unseen <- match(table[[name]], extra)
      codes[!is.na(unseen)] <- length(levels) + unseen[!is.na(unseen)] - 1L
      codes[is.na(codes)] <- -1L
      if (length(extra)) attr(codes, "extra_levels") <- extra
      if (!is.null(perturbation$dose_column)) {
        canonical <- .canonical_perturbations(table[[name]], perturbation$control)
        doses <- table[[perturbation$dose_column]]
        attr(codes, "doses") <- .perturbation_doses(if (is.null(doses)) rep(NA, nrow(table)) else doses, canonical)
      }
      return(codes)
    }
    codes[is.na(codes)] <- -1L
    codes
  }))
}

# guidance_scale for the core: one number (every covariate together), or a
# named numeric vector, one scale per covariate (others 1), as a named list
# with the core's covariate names ("condition" for a model of one).
.guidance_option <- function(model, guidance_scale) {
  if (is.null(names(guidance_scale))) {
    .check_number(guidance_scale, "guidance_scale", lower = 0)
    return(guidance_scale)
  }
  if (!is.numeric(guidance_scale) || anyNA(guidance_scale) || any(guidance_scale < 0) ||
      any(!nzchar(names(guidance_scale))) || anyDuplicated(names(guidance_scale))) {
    stop("`guidance_scale` must be one number >= 0, or numbers >= 0 named by covariate", call. = FALSE)
  }
  unknown <- setdiff(names(guidance_scale), names(model$covariates))
  if (length(unknown)) {
    stop(sprintf("`guidance_scale` names %s, not covariates of the model; its covariates are: %s",
                 .first_few(unknown), if (length(model$covariates)) .first_few(names(model$covariates)) else "none"),
         call. = FALSE)
  }
  scales <- as.list(guidance_scale)
  if (length(model$covariates) == 1L) names(scales) <- "condition"
  scales
}

# The cells' own covariates from `condition` (as reconstruct_cells() and
# transfer_cells() take it: column names, a data.frame, or one level per cell
# of a one-covariate model), or NULL: the model's columns that `x` has.
# Returns the resolved input (.expression_input()) with `table`, the
# covariate table of its cells (NA where unknown).
.input_with_covariates <- function(model, x, assay, condition, arg = "condition") {
  input <- .input_with_own_covariates(model, x, assay, condition)
  input$table <- .covariate_table(model, input$own, input$n_cells, arg)
  input
}

# The same input before its values are checked against the model: `own`
# holds the cells' values as they are (a data.frame of the model's columns
# that were found, and the dose column of a dosed perturbation model).
.input_with_own_covariates <- function(model, x, assay, condition) {
  # Opened once, whatever x is (an .h5ad path included), then the condition
  # is read from its covariates: by default the model's columns that x has.
  input <- .expression_input(x, assay, genes = model$genes)
  if (is.null(condition) && length(model$covariates)) {
    present <- intersect(names(model$covariates), colnames(input$covariates))
    if (length(present)) condition <- present
  }
  input$conditions <- .resolve_covariates(condition, input$covariates, input$n_cells)
  input$condition <- .combined_condition(input$conditions)
  own <- as.data.frame(lapply(input$conditions, as.character), stringsAsFactors = FALSE)
  if (length(model$covariates) == 1L && ncol(own) == 1L) names(own) <- names(model$covariates)
  # A dosed perturbation model reads the cells' own doses from their column.
  dose_column <- model$perturbation$dose_column
  if (!is.null(dose_column) && ncol(own) && !dose_column %in% names(own) &&
      dose_column %in% colnames(input$covariates)) {
    own[[dose_column]] <- as.character(input$covariates[[dose_column]])
  }
  input$own <- if (ncol(own)) own else data.frame(row.names = seq_len(input$n_cells))
  input
}
