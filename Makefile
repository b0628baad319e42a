# gridwatch: `make run` serves the demo county on http://127.0.0.1:8000, `make test` tests it all.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NODE_MODULES := node_modules/.installed

.PHONY: run stop test lint bench-load screenshots clean

$(INSTALLED): pyproject.toml
	scripts/system-packages.sh run
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Browser packages (docs/frontend.md): reinstalled exactly from the lock whenever it changes.
$(NODE_MODULES): package-lock.json
	scripts/system-packages.sh run
	npm ci --no-audit --no-fund
	touch $@

run: $(INSTALLED) $(NODE_MODULES)
	scripts/system-packages.sh run
	$(BIN)/gridwatch run

stop: $(INSTALLED)
	$(BIN)/gridwatch db down

test: $(INSTALLED) $(NODE_MODULES)
	scripts/system-packages.sh test
	$(BIN)/ruff check .
	$(BIN)/pytest

bench-load: $(INSTALLED)
	$(BIN)/python bench/load.py

# The README's pictures: the overview from the browser tests (tests/browser/conftest.py:
# `screenshot`), the live map and the incident card from the demo county (scripts/screenshots.py).
DOC_SCREENSHOTS := dashboard-home-zh
screenshots: $(INSTALLED) $(NODE_MODULES)
	$(BIN)/pytest -m browser tests/browser
	mkdir -p docs/screenshots
	for name in $(DOC_SCREENSHOTS); do cp var/test/screenshots/$$name.png docs/screenshots/; done
	$(BIN)/gridwatch db up
	$(BIN)/python scripts/screenshots.py

clean:
	-$(BIN)/gridwatch db down
	rm -rf $(VENV) var node_modules
