"""Factory-line orchestration: many ports in parallel, one registry, one issuing CA.

from provision.line import Line, load_config
summary = Line(load_config("station.toml"), operator="alice", limit=100).run()
"""

from provision.line.config import StationConfig, load_config
from provision.line.runner import Line, Summary, run_line
from provision.line.station import Outcome, Status
from provision.transport.base import register_scheme

# jig:// — simulated jigs (a new device each time the port is opened), resolved lazily so
# host code never imports the simulator unless such a URL is used.
register_scheme("jig", "provision.line.simulate:open_jig_transport")

__all__ = ["Line", "Outcome", "StationConfig", "Status", "Summary", "load_config", "run_line"]
