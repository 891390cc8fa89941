"""Guards on the test tree itself: pytest's default import mode needs unique module names."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique():
    names = Counter(
        p.name for p in TESTS.rglob("*.py") if p.name != "conftest.py" and "vectors" not in p.parts
    )
    assert [n for n, c in names.items() if c > 1] == []
