# One command each: `make demo` sets everything up and runs the demo,
# `make test` sets everything up and runs the tests (CI runs this).
VENV ?= .venv
PY := $(VENV)/bin/python
NATIVE := $(wildcard native/*.c native/*.h native/kernels/*.c native/kernels/*.h)

.PHONY: test demo bench sanitize clean

$(VENV)/.installed: pyproject.toml setup.py build_native.py $(NATIVE)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

demo: $(VENV)/.installed
	$(PY) notebooks/linear_regression.py

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) tests/benchmarks/bench_core.py

# Rebuilds the engine with AddressSanitizer and UBSan and runs the tests on it.
sanitize:
	bash tests/sanitize.sh

clean:
	rm -rf $(VENV) build core/_native*.so core/_native.c
