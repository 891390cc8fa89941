"""Factory-line orchestration: many ports in parallel, one registry, one issuing CA.

from provision.line import Line, load_config
summary = Line(load_config("station.toml"), operator="alice", limit=100).run()
"""

from provision.line.config import StationConfig, load_config
from provision.line.runner import Line, Summary, run_line
from provision.line.station import Outcome, Status

__all__ = ["Line", "Outcome", "StationConfig", "Status", "Summary", "load_config", "run_line"]
