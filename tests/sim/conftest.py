import sys
from pathlib import Path

# simkit.py is shared by tests/sim, tests/link and tests/device.
sys.path.insert(0, str(Path(__file__).parent))
