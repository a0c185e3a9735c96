library(testthat)
library(exprflow)

test_check("exprflow")
