"""A modem left inside a double quote by earlier noise still answers the at-cmng probe."""

from provision.dialects.at_cmng import AtCmngSession
from provision.sim.serve import open_sim_transport


def test_probe_recovers_from_an_open_quote():
    transport = open_sim_transport("sim://at-cmng", None)
    try:
        # Like a native HELLO frame whose bytes hold one 0x22: at_host now ignores line ends.
        transport.write(b'\x00\x05\x01"\x02\x00')
        assert AtCmngSession.probe(transport, 0.6)
    finally:
        transport.close()


def test_probe_still_says_no_to_a_silent_port():
    transport = open_sim_transport("sim://native?silent_after=0", None)
    try:
        assert not AtCmngSession.probe(transport, 0.2)
    finally:
        transport.close()
