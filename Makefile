# exprflow: one-command set-up, demo and tests on a fresh Debian 12 machine.
#   make demo   installs what is missing, builds the package into ./.Rlib, runs the PBMC demo
#   make test   installs what is missing, builds, runs the R (testthat) and C++ (GoogleTest) tests
# Other targets: deps, install, core-test, r-test, bench, docs, clean.

SHELL := /bin/bash
RLIB := $(CURDIR)/.Rlib
CORE_TEST_BUILD := $(CURDIR)/build/core-tests
JOBS ?= 2
export R_LIBS := $(RLIB)
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime
export EXPRFLOW_JOBS := $(JOBS)

DEBIAN_PACKAGES := r-base-dev libtorch-dev nlohmann-json3-dev libopenblas0-pthread cmake ccache libhdf5-dev \
  googletest libgtest-dev r-cran-rcpp r-cran-rcppeigen r-cran-matrix r-cran-cli r-cran-ggplot2 \
  r-cran-testthat r-cran-roxygen2 r-cran-knitr r-cran-rmarkdown r-bioc-singlecellexperiment \
  r-bioc-rhdf5 r-cran-seurat r-cran-fnn r-cran-cluster r-cran-irlba r-cran-uwot
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps install demo test r-test core-test bench docs clean

deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else echo "Debian packages: all present"; fi

# The glue's objects are removed first: R's make does not track header
# dependencies, so a glue object older than a changed core header would be
# linked against an incompatible core (the core itself is rebuilt by CMake,
# which does track them).
install: deps
	@mkdir -p $(RLIB)
	rm -f src/*.o src/*.so
	R CMD INSTALL --no-multiarch --no-test-load -l $(RLIB) .

demo: install
	Rscript inst/scripts/demo_pbmc.R

r-test: install
	Rscript tests/run_testthat.R

core-test: deps
	cmake -S src/core -B $(CORE_TEST_BUILD) -DCMAKE_BUILD_TYPE=Release -DEXPRFLOW_BUILD_TESTS=ON >/dev/null
	cmake --build $(CORE_TEST_BUILD) -j $(JOBS)
	$(CORE_TEST_BUILD)/exprflow_core_tests --gtest_brief=1 2>&1 | tee $(CORE_TEST_BUILD)/gtest.log

# Both suites, then one summary line counted over both.
test: install
	@set -o pipefail; status=0; \
	$(MAKE) --no-print-directory core-test || status=1; \
	Rscript tests/run_testthat.R 2>&1 | tee build/testthat.log || status=1; \
	g_pass=$$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' $(CORE_TEST_BUILD)/gtest.log | tail -1); \
	g_fail=$$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' $(CORE_TEST_BUILD)/gtest.log | tail -1); \
	r_pass=$$(sed -n 's/^testthat: \([0-9]*\) passed.*/\1/p' build/testthat.log | tail -1); \
	r_fail=$$(sed -n 's/^testthat: [0-9]* passed, \([0-9]*\) failed.*/\1/p' build/testthat.log | tail -1); \
	if [ -z "$$g_pass" ] || [ -z "$$r_pass" ]; then status=1; fi; \
	echo "GoogleTest: $${g_pass:-0} passed, $${g_fail:-0} failed; testthat: $${r_pass:-0} passed, $${r_fail:-0} failed"; \
	echo "$$(( $${g_pass:-0} + $${r_pass:-0} )) passed, $$(( $${g_fail:-0} + $${r_fail:-0} )) failed"; \
	exit $$status

bench: install
	cmake -S src/core -B build/bench -DCMAKE_BUILD_TYPE=Release -DEXPRFLOW_BUILD_BENCH=ON >/dev/null
	cmake --build build/bench -j $(JOBS)
	build/bench/bench_latent_dit

# Regenerates RcppExports and the roxygen documentation (needs an installed build).
docs: install
	Rscript -e 'Rcpp::compileAttributes()'
	Rscript -e 'roxygen2::roxygenise(load_code = roxygen2::load_installed)'

clean:
	./cleanup
	rm -rf build $(RLIB)
