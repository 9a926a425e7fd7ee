VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The Claude Code client that validates the plugin (tests/test_plugin.py), pinned, in a
# project-local npm prefix.
CLAUDE_CODE_VERSION := 2.1.332
NODE_PREFIX := .ci/node
CLAUDE_BIN := $(NODE_PREFIX)/node_modules/.bin

.PHONY: venv claude redis test demo lint clean bench cli-reference

$(VENV)/.installed: pyproject.toml hatch_build.py skill/log_archiver/search/_gramset.c
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

claude:
	@if [ "$$($(CLAUDE_BIN)/claude --version 2>/dev/null | cut -d' ' -f1)" != "$(CLAUDE_CODE_VERSION)" ]; then \
	  command -v npm >/dev/null || bash .ci/install-node || { echo "error: npm is needed to" \
	    "install the Claude Code client that validates the plugin: apt-get install nodejs" \
	    "npm" >&2; exit 1; }; \
	  echo "npm install --prefix $(NODE_PREFIX) @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)"; \
	  npm install --prefix $(NODE_PREFIX) --no-save --no-audit --no-fund --loglevel=error \
	    @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) || exit 1; \
	  version="$$($(CLAUDE_BIN)/claude --version | cut -d' ' -f1)"; \
	  [ "$$version" = "$(CLAUDE_CODE_VERSION)" ] || { echo "error: $(CLAUDE_BIN)/claude is" \
	    "'$$version', not $(CLAUDE_CODE_VERSION)" >&2; exit 1; }; \
	fi

redis:
	@command -v redis-server >/dev/null || bash .ci/install-redis || { echo "error:" \
	  "redis-server is needed by the Redis queue tests: apt-get install redis-server" >&2; \
	  exit 1; }

test: venv claude redis
	$(VENV)/bin/ruff check .
	PATH="$(CURDIR)/$(CLAUDE_BIN):$$PATH" $(PY) -m pytest

demo: venv
	$(PY) scripts/demo

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .demo $(NODE_PREFIX)

bench: venv
	@status=0; for b in bench/bench_*.py; do $(PY) $$b || status=1; done; exit $$status

cli-reference: venv
	$(PY) -m log_archiver.cli.reference --output skill/references/cli.md
