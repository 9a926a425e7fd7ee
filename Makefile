VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: venv test demo lint clean bench cli-reference

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

demo: venv
	$(PY) scripts/demo

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .demo

bench: venv
	@status=0; for b in bench/bench_*.py; do $(PY) $$b || status=1; done; exit $$status

cli-reference: venv
	$(PY) -m log_archiver.cli.reference --output skill/references/cli.md
