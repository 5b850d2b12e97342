"""pytest's setup for tests/ (the repository root's conftest.py runs the book's notebooks)."""

import pytest

# the shared helpers (tests/helpers.py) assert too: pytest rewrites their asserts to show the values, as in tests
pytest.register_assert_rewrite("helpers")
