"""pytest's setup for tests/ (the repository root's conftest.py runs the book's notebooks)."""

import pytest

# the shared helpers (tests/helpers.py) assert too: pytest rewrites their asserts to show the values, as in tests
pytest.register_assert_rewrite("helpers")


@pytest.fixture
def real_mnist():
    """The real MNIST test files' folder (../shared/data/mnist, or $F2D2MINI_MNIST); without them the test is skipped
    with the message that says where they were looked for."""
    from f2d2mini.images import data

    try:
        return data.mnist_root()
    except FileNotFoundError as err:
        pytest.skip(str(err))
