# Two commands do all the set-up on a fresh machine:
#   make study   -- the main job: `regularkit study` on the embedded digits data
#   make test    -- the test suite
# Each creates .venv and installs regularkit with the pinned versions of constraints.txt.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: study test bench mutate clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

study: $(STAMP)
	$(VENV)/bin/regularkit study $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

bench: $(STAMP)
	$(PY) bench/loop_overhead.py

# Mutation testing of one module against its tests (not part of `make test`; see docs/mutation.md), e.g.
#   make mutate ARGS="--module src/regularkit/augment/erase.py --tests tests/augment/test_erase.py"
mutate: $(STAMP)
	$(PY) tools/mutate.py $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
