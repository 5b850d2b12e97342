# make book: build and execute the book into _build/html (strict: any warning or failing cell fails), then check
#            that every chapter page shows its figures and each widget its first frame (scripts/check_pages.py).
# make test: unit tests and every notebook in book/ (nbval, through conftest.py).
# Set F2D2MINI_FAST=1 in the environment for a quick run; it is passed through to the notebooks.

VENV   := .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: book test clean

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W --keep-going
	$(PYTHON) scripts/check_pages.py

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
