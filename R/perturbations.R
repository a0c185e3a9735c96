# Perturbation covariates: labels that name a set of perturbations ("A+B",
# the CPA / GEARS convention), a control label with none, and optional doses
# (one per member, "10+100"). The core embeds each member once and sums a
# combination's members (scaled by a learned dose response), so that
# combinations never seen in training can be asked for.

# Labels in one canonical form: members trimmed and sorted ("B + A" ->
# "A+B"), the control label as it is, NA kept. Returns the labels and, per
# cell, the order that sorts its members as written (for their doses).
.canonical_perturbations <- function(values, control, arg = "perturbation") {
  values <- as.character(values)
  perturbed <- !is.na(values) & values != control
  parts <- strsplit(ifelse(perturbed, values, ""), "+", fixed = TRUE)
  parts <- lapply(parts, trimws)
  # strsplit() drops a trailing empty member ("A+"), hence the pattern.
  empty <- perturbed & (grepl("^\\s*\\+|\\+\\s*$", values) |
                          vapply(parts, function(p) !length(p) || any(!nzchar(p)), logical(1)))
  if (any(empty)) {
    stop(sprintf("`%s` has label(s) with an empty member: %s", arg, .first_few(unique(values[empty]))),
         call. = FALSE)
  }
  twice <- vapply(parts, anyDuplicated, integer(1)) > 0L
  if (any(twice)) {
    stop(sprintf("`%s` has label(s) naming a member twice: %s", arg, .first_few(unique(values[twice]))),
         call. = FALSE)
  }
  order <- lapply(parts, function(p) order(p, method = "radix"))
  labels <- vapply(seq_along(parts), function(i) {
    if (is.na(values[i])) NA_character_ else if (values[i] == control) control else
      paste(parts[[i]][order[[i]]], collapse = "+")
  }, character(1))
  list(labels = labels, order = order, members = lapply(seq_along(parts), function(i) parts[[i]][order[[i]]]))
}

# Doses per cell and member: `values` numbers (one member per cell) or
# strings "10+100" in the order the labels were written; returned as a
# numeric matrix cells x (most members), in the canonical member order
# (.canonical_perturbations()), zero where a cell has fewer members.
.perturbation_doses <- function(values, canonical, arg = "dose") {
  n <- length(canonical$labels)
  if (length(values) != n) stop(sprintf("`%s` needs one value per cell (%d)", arg, n), call. = FALSE)
  width <- max(1L, lengths(canonical$members))
  out <- matrix(0, n, width)
  text <- as.character(values)
  for (i in seq_len(n)) {
    k <- length(canonical$members[[i]])
    if (!k) next
    if (is.na(text[i])) stop(sprintf("`%s` is NA for a perturbed cell (cell %d)", arg, i), call. = FALSE)
    d <- suppressWarnings(as.numeric(trimws(strsplit(text[i], "+", fixed = TRUE)[[1L]])))
    if (length(d) != k || anyNA(d) || any(!is.finite(d)) || any(d < 0)) {
      stop(sprintf(paste("`%s` of cell %d is '%s' but its perturbation '%s' has %d member(s): give one",
                         "non-negative dose per member, joined by '+'"), arg, i, text[i],
                   canonical$labels[i], k), call. = FALSE)
    }
    out[i, seq_len(k)] <- d[canonical$order[[i]]]
  }
  out
}

# The perturbation covariate of a fit: `perturbation` (a column name of x's
# cell data, or one label per cell), `control` (its unperturbed label) and
# `dose` (a column name, or one value per cell). Returns NULL without a
# perturbation, else list(name, labels (factor of canonical labels), control,
# doses (matrix or NULL), dose_column, dose_scale).
.perturbation_input <- function(input, perturbation, control, dose) {
  if (is.null(perturbation)) {
    if (!is.null(control) || !is.null(dose)) {
      stop("`control` and `dose` describe a `perturbation`: name its column first", call. = FALSE)
    }
    return(NULL)
  }
  n <- input$n_cells
  named <- is.character(perturbation) && length(perturbation) == 1L && n != 1L
  name <- if (named) perturbation else "perturbation"
  if (name %in% names(input$conditions)) {
    stop(sprintf("'%s' is given both as `condition` and as `perturbation`", name), call. = FALSE)
  }
  values <- .resolve_condition(perturbation, input$covariates, n, "perturbation")
  if (is.null(control)) {
    guess <- intersect(c("control", "ctrl", "non-targeting", "NT", "DMSO", "vehicle", "unperturbed"), levels(values))
    stop(sprintf("`control` must name the label of unperturbed cells in `perturbation`%s",
                 if (length(guess)) sprintf(" (e.g. \"%s\")", guess[1L]) else ""), call. = FALSE)
  }
  .check_string(control, "control")
  if (!control %in% levels(values)) {
    stop(sprintf("`control` is \"%s\" but no cell has that label; `perturbation` has: %s", control,
                 .first_few(levels(values))), call. = FALSE)
  }
  canonical <- .canonical_perturbations(values, control)
  labels <- factor(canonical$labels, levels = unique(c(control, sort(unique(canonical$labels)))))
  out <- list(name = name, labels = droplevels(labels), control = control, doses = NULL, dose_column = NULL,
              dose_scale = NULL)
  if (!is.null(dose)) {
    dose_named <- is.character(dose) && length(dose) == 1L && n != 1L
    dose_values <- if (dose_named) {
      if (is.null(input$covariates) || !dose %in% colnames(input$covariates)) {
        stop(sprintf("`dose` names column '%s', which the cells do not have", dose), call. = FALSE)
      }
      input$covariates[[dose]]
    } else dose
    out$doses <- .perturbation_doses(dose_values, canonical)
    positive <- out$doses[out$doses > 0]
    if (!length(positive)) stop("`dose` has no positive dose", call. = FALSE)
    out$dose_column <- if (dose_named) dose else "dose"
    out$dose_scale <- stats::median(positive)
  }
  out
}

# The model's perturbation covariate (from its annotations), or NULL:
# list(covariate, control, dose_column (or NULL), members).
.model_perturbation <- function(notes, covariates) {
  name <- notes$perturbation_column
  if (is.null(name) || !name %in% names(covariates)) return(NULL)
  control <- notes$perturbation_control
  levels <- covariates[[name]]
  members <- unique(unlist(strsplit(setdiff(levels, control), "+", fixed = TRUE)))
  list(covariate = name, control = control, dose_column = notes$dose_column, members = members)
}

# A perturbation column of a covariate table, checked against the model:
# canonical labels, members the model knows (combinations it has no level
# for are fine), and the doses where the model has them. Returns the labels
# with attribute "doses" (a matrix) for a dosed model. Members in
# `unseen_members` (the model's genes, for transfer_cells(mode = "shift"),
# which predicts an unseen target through its stand-ins) may be unknown.
.perturbation_column <- function(model, values, doses, arg, unseen_members = character()) {
  p <- model$perturbation
  canonical <- .canonical_perturbations(values, p$control, sprintf("%s$%s", arg, p$covariate))
  unknown <- setdiff(unlist(canonical$members), c(p$members, unseen_members))
  if (length(unknown)) {
    hint <- if (identical(model$space, "latent"))
      paste0(" (an unseen target can be predicted from its stand-ins, trained targets alike in co-expression ",
             "when it is one of the model's genes, or in the gene sets or network of `stand_ins`: ",
             "transfer_cells(mode = \"shift\"))") else ""
    stop(sprintf("unknown perturbation(s) %s in `%s` (covariate '%s'); the model knows: %s%s", .first_few(unknown),
                 arg, p$covariate, .first_few(p$members, 50L), hint), call. = FALSE)
  }
  labels <- canonical$labels
  if (!is.null(p$dose_column)) {
    if (is.null(doses)) {
      if (any(lengths(canonical$members) > 0)) {
        stop(sprintf("the model has doses: `%s` needs a column '%s' (one dose per member, e.g. \"10+100\")", arg,
                     p$dose_column), call. = FALSE)
      }
      doses <- rep(NA_real_, length(labels))
    }
    attr(labels, "doses") <- .perturbation_doses(doses, canonical, sprintf("%s$%s", arg, p$dose_column))
  }
  labels
}

# The members of canonical labels' (one label; none for the control or NA).
.perturbation_members <- function(label, control) {
  if (is.na(label) || label == control) character() else strsplit(label, "+", fixed = TRUE)[[1L]]
}
