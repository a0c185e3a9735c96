#' Plot the training history of a model
#'
#' @param model An `exprflow_model`.
#' @param log_scale Use a log10 y axis.
#' @return A ggplot of the training and validation loss per epoch.
#' @examples
#' \donttest{
#' sce <- example_pbmc()
#' model <- fit_expression_model(sce, epochs = 3, n_tokens = 4, token_dim = 16,
#'                               n_layers = 1, n_heads = 2, hidden = 64)
#' plot_training_history(model)
#' }
#' @export
plot_training_history <- function(model, log_scale = FALSE) {
  if (!inherits(model, "exprflow_model")) stop("`model` must be an exprflow_model", call. = FALSE)
  h <- model$history
  if (!NROW(h)) stop("the model has no training history", call. = FALSE)
  long <- rbind(
    data.frame(epoch = h$epoch, loss = h$train_loss, split = "training"),
    data.frame(epoch = h$epoch, loss = h$validation_loss, split = "validation"))
  long <- long[!is.na(long$loss), ]
  p <- ggplot2::ggplot(long, ggplot2::aes(x = .data$epoch, y = .data$loss, colour = .data$split)) +
    ggplot2::geom_line() +
    ggplot2::geom_point(size = 1) +
    ggplot2::labs(x = "epoch", y = "loss (DDPM: prediction MSE + weighted VLB)", colour = NULL,
                  title = paste("exprflow", model$architecture)) +
    ggplot2::theme_minimal()
  if (log_scale) p <- p + ggplot2::scale_y_log10()
  p
}

#' @rdname plot_training_history
#' @param x An `exprflow_model`.
#' @param ... Passed to `plot_training_history()`.
#' @export
plot.exprflow_model <- function(x, ...) print(plot_training_history(x, ...))

#' @importFrom ggplot2 .data
NULL
