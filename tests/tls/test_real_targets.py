"""Real firmware has no TLS check command: each dialect turns its refusal into 'cannot,
use --bundle'. The peers here answer like real firmware does to an unknown command."""

from __future__ import annotations

import pytest

from provision.device import Device
from provision.dialects.at_cmng import AtCmngSession
from provision.dialects.zephyr_shell import ZephyrShellSession
from provision.tls.device_check import TLSCheckUnsupported, check_on_device


class LineDevice:
    """A Transport that answers each received line with `answer(line)`; sans timing."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.pending = b""
        self.out = b""

    def write(self, data: bytes) -> None:
        self.pending += data
        while b"\n" in self.pending or b"\r" in self.pending:
            cut = min(i for i in (self.pending.find(b"\r"), self.pending.find(b"\n")) if i >= 0)
            line, self.pending = self.pending[:cut], self.pending[cut + 1 :]
            if line.strip() or self.pending == b"":
                self.out += self.answer(line.decode())

    def read(self, max_bytes: int, timeout: float) -> bytes:
        data, self.out = self.out[:max_bytes], self.out[max_bytes:]
        return data

    def close(self) -> None:
        pass


def modem(line: str) -> bytes:
    # nRF91 AT host: unknown commands get a plain ERROR, even with +CMEE=1.
    return b"\r\nERROR\r\n" if line.startswith("AT#") else b"\r\nOK\r\n"


def zephyr(line: str) -> bytes:
    reply = ""
    if line.startswith("cred tlscheck"):
        reply = "tlscheck: command not found\r\n"
    return f"{line}\r\n{reply}uart:~$ ".encode()


def test_a_real_modem_answers_error_so_the_host_offers_the_bundle():
    session = AtCmngSession(LineDevice(modem), timeout=0.5, retries=0)
    with pytest.raises(TLSCheckUnsupported) as caught:
        check_on_device(Device(session, "loop"), "localhost", 8443, 16842753)
    assert "AT#XTLSCHECK" in caught.value.message
    assert "--bundle FILE --server localhost:8443 --tag 16842753" in caught.value.message


def test_a_real_zephyr_shell_does_not_know_the_command():
    session = ZephyrShellSession(LineDevice(zephyr), timeout=0.5, retries=0)
    with pytest.raises(TLSCheckUnsupported) as caught:
        check_on_device(Device(session, "loop"), "localhost", 8443, 3)
    assert "command not found" in caught.value.message
    assert "--bundle FILE" in caught.value.message
