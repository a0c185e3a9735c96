# exprflow: one-command set-up, demo and tests on a fresh Debian 12 machine.
#   make demo   installs what is missing, builds the package into ./.Rlib, runs the PBMC demo
#   make test   installs what is missing, builds, runs the R (testthat) and C++ (GoogleTest) tests
# Other targets: deps, install, vignettes, core-test, r-test, check, sanitize, fuzz, bench, bench-pytorch, docs, clean.

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
  googletest libgtest-dev r-cran-rcpp r-cran-matrix r-cran-cli r-cran-ggplot2 \
  r-cran-testthat r-cran-roxygen2 r-cran-knitr r-cran-rmarkdown r-bioc-singlecellexperiment \
  r-bioc-rhdf5 r-bioc-hdf5array r-cran-seurat r-cran-fnn r-cran-cluster r-cran-irlba r-cran-uwot python3-anndata python3-torch \
  libgloo-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps install vignettes demo test r-test core-test core-test-build check check-deps sanitize fuzz bench bench-pytorch docs clean

# Installs the Debian packages of the list $(1) that are missing.
define install_missing
@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
if [ -n "$$missing" ]; then \
  echo "Installing Debian packages:" $$missing; \
  $(SUDO) apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
else echo "Debian packages: all present"; fi
endef

deps:
	$(call install_missing,$(DEBIAN_PACKAGES))

# The glue's objects are removed first: R's make does not track header
# dependencies, so a glue object older than a changed core header would be
# linked against an incompatible core (the core itself is rebuilt by CMake,
# which does track them).
install: deps
	@mkdir -p $(RLIB)
	rm -f src/*.o src/*.so
	R CMD INSTALL --no-multiarch --no-test-load -l $(RLIB) .
	@$(MAKE) --no-print-directory inst/doc/.built

# The vignettes, knitted with the installed package into inst/doc and
# installed with it (so that vignette(package = "exprflow") finds them). They
# are rebuilt when a vignette or the R code changed; `make vignettes` forces it.
# The second R CMD INSTALL reuses the compiled code (seconds).
VIGNETTE_SOURCES := $(wildcard vignettes/*.Rmd)
inst/doc/.built: $(VIGNETTE_SOURCES) $(wildcard R/*.R) DESCRIPTION
	Rscript -e 'tools::buildVignettes(dir = ".", tangle = TRUE, quiet = TRUE)'
	@mkdir -p inst/doc
	mv $(VIGNETTE_SOURCES:.Rmd=.html) $(VIGNETTE_SOURCES:.Rmd=.R) inst/doc/
	cp $(VIGNETTE_SOURCES) inst/doc/
	R CMD INSTALL --no-multiarch --no-test-load -l $(RLIB) . >/dev/null
	@touch $@

vignettes:
	rm -f inst/doc/.built
	@$(MAKE) --no-print-directory inst/doc/.built

# OpenBLAS picks kernels by CPU model; Debian 12's 0.3.21 does not know recent
# Xeons and runs generic ones (~4x slower sgemm). The demo and the benchmarks
# name the kernels the CPU supports, unless OPENBLAS_CORETYPE is set already;
# the tests keep the machine's own setting. exprflow_info() explains it.
OPENBLAS_CORE := $(or $(OPENBLAS_CORETYPE),$(shell \
  if grep -qw avx512bw /proc/cpuinfo 2>/dev/null; then echo SkylakeX; \
  elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then echo Haswell; fi))
WITH_OPENBLAS_CORE := $(if $(OPENBLAS_CORE),OPENBLAS_CORETYPE=$(OPENBLAS_CORE))

demo: install
	$(WITH_OPENBLAS_CORE) Rscript inst/scripts/demo_pbmc.R

r-test: install
	Rscript tools/run_testthat.R

core-test-build: deps
	cmake -S src/core -B $(CORE_TEST_BUILD) -DCMAKE_BUILD_TYPE=Release -DEXPRFLOW_BUILD_TESTS=ON >/dev/null
	cmake --build $(CORE_TEST_BUILD) -j $(JOBS)

# pipefail: a failing test fails the target (tee alone would exit 0).
core-test: core-test-build
	set -o pipefail; $(CORE_TEST_BUILD)/exprflow_core_tests --gtest_brief=1 2>&1 | tee $(CORE_TEST_BUILD)/gtest.log

# Both suites, then one summary line counted over both.
test: install
	@set -o pipefail; status=0; \
	$(MAKE) --no-print-directory core-test || status=1; \
	Rscript tools/run_testthat.R 2>&1 | tee build/testthat.log || status=1; \
	g_pass=$$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' $(CORE_TEST_BUILD)/gtest.log | tail -1); \
	g_fail=$$(grep -c '^\[  FAILED  \] [A-Za-z_]' $(CORE_TEST_BUILD)/gtest.log); \
	r_pass=$$(sed -n 's/^testthat: \([0-9]*\) passed.*/\1/p' build/testthat.log | tail -1); \
	r_fail=$$(sed -n 's/^testthat: [0-9]* passed, \([0-9]*\) failed.*/\1/p' build/testthat.log | tail -1); \
	if [ -z "$$g_pass" ] || [ -z "$$r_pass" ]; then status=1; fi; \
	echo "GoogleTest: $${g_pass:-0} passed, $${g_fail:-0} failed; testthat: $${r_pass:-0} passed, $${r_fail:-0} failed"; \
	echo "$$(( $${g_pass:-0} + $${r_pass:-0} )) passed, $$(( $${g_fail:-0} + $${r_fail:-0} )) failed"; \
	exit $$status

bench: install
	cmake -S src/core -B build/bench -DCMAKE_BUILD_TYPE=Release -DEXPRFLOW_BUILD_BENCH=ON >/dev/null
	cmake --build build/bench -j $(JOBS)
	@echo "OpenBLAS as the machine sets it:"
	build/bench/bench_latent_dit
	@if [ -n "$(OPENBLAS_CORE)" ]; then echo "OpenBLAS with OPENBLAS_CORETYPE=$(OPENBLAS_CORE):"; \
	  $(WITH_OPENBLAS_CORE) build/bench/bench_latent_dit; fi

# Every composition's training throughput beside the same model in PyTorch
# (src/core/bench/pytorch/, Debian's python3-torch: the same LibTorch and
# OpenBLAS), with OpenBLAS as the machine picks it and, where that differs,
# with the kernels the CPU supports. ~25 min on 2 cores (3 repeats), after the build.
bench-pytorch: deps
	cmake -S src/core -B build/bench -DCMAKE_BUILD_TYPE=Release -DEXPRFLOW_BUILD_BENCH=ON >/dev/null
	cmake --build build/bench -j $(JOBS) --target bench_compositions
	/usr/bin/python3 src/core/bench/compare_pytorch.py --bench build/bench/bench_compositions

# R CMD build + R CMD check --as-cran in build/check (vignettes, examples
# and tests included; needs the tools the check calls: qpdf, checkbashisms).
# Offline, so the checks that need the internet (CRAN's incoming
# checks, the clock for future timestamps) are off; the PDF manual needs
# LaTeX, which the set-up does not install (--no-manual).
CHECK_PACKAGES := qpdf devscripts
check-deps:
	$(call install_missing,$(CHECK_PACKAGES))

check: export CCACHE_BASEDIR := /
check: install check-deps
	rm -rf build/check && mkdir -p build/check
	cd build/check && R CMD build $(CURDIR) && \
	  _R_CHECK_FORCE_SUGGESTS_=false _R_CHECK_SYSTEM_CLOCK_=false _R_CHECK_CRAN_INCOMING_REMOTE_=false \
	  R CMD check --as-cran --no-manual exprflow_*.tar.gz
	@grep -q "Status: OK\|Status: [0-9]* NOTE" build/check/exprflow.Rcheck/00check.log

# The core tests under AddressSanitizer + UndefinedBehaviorSanitizer (a
# separate instrumented build), then a fast subset under valgrind on the
# plain build. LibTorch is not instrumented: its one-time allocations at
# start-up are suppressed (src/core/sanitize/), nothing of exprflow's is.
SANITIZE_PACKAGES := valgrind
SANITIZE_BUILD := $(CURDIR)/build/sanitize
VALGRIND_TESTS := ModelEnvelope.*:TensorBundle.*:LegacyModelFiles.*:CellBatch.*:SplitCells.*:Options.*:PrincipalAxes.*:GenerativeModel.LoadErrors:ConnectivityModel.SaveLoadIsBitIdentical
sanitize: core-test-build
	$(call install_missing,$(SANITIZE_PACKAGES))
	cmake -S src/core -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXPRFLOW_BUILD_TESTS=ON \
	  -DEXPRFLOW_SANITIZE=ON >/dev/null
	cmake --build $(SANITIZE_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_container_overflow=0:detect_leaks=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/src/core/sanitize/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(SANITIZE_BUILD)/exprflow_core_tests --gtest_brief=1
	valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	  --suppressions=$(CURDIR)/src/core/sanitize/valgrind.supp \
	  $(CORE_TEST_BUILD)/exprflow_core_tests --gtest_brief=1 --gtest_filter='$(VALGRIND_TESTS)'

# libFuzzer on every reader of untrusted bytes (src/core/fuzz: model files,
# their payloads, JSON specs), FUZZ_SECONDS each, from the seed corpora in
# src/core/fuzz/corpus; new inputs collect in build/fuzz/corpus. A crash
# stops that target (the others still run), leaves the input as
# build/fuzz/<target>-crash-* and makes the target fail.
FUZZ_PACKAGES := clang libclang-rt-14-dev
FUZZ_BUILD := $(CURDIR)/build/fuzz
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := fuzz_model_file fuzz_model_payload fuzz_options_json
fuzz: deps
	$(call install_missing,$(FUZZ_PACKAGES))
	cmake -S src/core -B $(FUZZ_BUILD) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DEXPRFLOW_BUILD_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	cd $(FUZZ_BUILD) && status=0 && for target in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$target && \
	  ASAN_OPTIONS=detect_container_overflow=0:detect_leaks=0 ./$$target -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 -artifact_prefix=$$target- corpus/$$target \
	    $(CURDIR)/src/core/fuzz/corpus/$$target || status=1; done; exit $$status

# Regenerates RcppExports and the roxygen documentation (needs an installed build).
docs: install
	Rscript -e 'Rcpp::compileAttributes()'
	Rscript -e 'roxygen2::roxygenise(load_code = roxygen2::load_installed)'

clean:
	./cleanup
	rm -rf build $(RLIB)
