import sys
from pathlib import Path

# The simulator builders (tests/sim/simkit.py) serve the link tests too.
sys.path.insert(0, str(Path(__file__).parents[1] / "sim"))
