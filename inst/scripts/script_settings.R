# The scripts' settings argument: changes from the package defaults given on
# the command line, e.g. "kl_weight=0.1,latent_dim=32". Sourced by the
# scripts that take one (compare_latent.R, perturbation_kang.R,
# perturbation_kang_dynamics.R).

# A named list (numbers where they read as numbers); NULL or "" gives none.
settings_argument <- function(text) {
  if (is.null(text) || !nzchar(text)) return(list())
  pairs <- strsplit(strsplit(text, ",")[[1]], "=")
  if (any(lengths(pairs) != 2L)) stop("settings must read like 'kl_weight=0.1,latent_dim=32'")
  settings <- lapply(pairs, function(p) { v <- suppressWarnings(as.numeric(p[[2]])); if (is.na(v)) p[[2]] else v })
  stats::setNames(settings, vapply(pairs, `[[`, "", 1L))
}
