# make book: build and execute the book into _build/html (strict: any warning or failing cell fails), then check
#            the pages (scripts/check_pages.py): figures, page sizes, and, when Debian's chromium is installed,
#            every page offline in a real browser (formulas typeset, tables, sliders that move, no outside request).
#            CHECK_PAGES=--browser makes the browser part required (CI), CHECK_PAGES=--no-browser skips it.
# make lab:  open chapter 5 in JupyterLab headlessly (chromium), run it and move its controls
#            (scripts/check_lab.py; CHECK_LAB=--browser fails without chromium instead of skipping).
# make test: unit tests and every notebook in book/ (nbval, through conftest.py).
# Set F2D2MINI_FAST=1 in the environment for a quick run; it is passed through to the notebooks.

VENV   := .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

CHECK_PAGES ?=
CHECK_LAB   ?=

.PHONY: book lab test clean

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W --keep-going
	$(PYTHON) scripts/check_pages.py $(CHECK_PAGES)

lab: $(STAMP)
	$(PYTHON) scripts/check_lab.py $(CHECK_LAB)

test: $(STAMP)
	$(PYTHON) -m pytest

clean:
	rm -rf _build

$(PYTHON):
	python3 -m venv $(VENV)

# Reinstall only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -e '.[dev]'
	touch $@
