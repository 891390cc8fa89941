"""A bare protocol client for conformance checks the Device API does not expose (error
replies, windows, retries, resume): frames built with provision.link, sent over any
transport URL."""

from __future__ import annotations

import select
import socket
import time
from urllib.parse import urlsplit

from provision.link import framing
from provision.link import messages as m
from provision.urls import open_url as open_transport


class _Socket:
    """socket:// without pyserial's 0.3 s pause on close (the power-cut rig reconnects a lot)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return b""
        data = self.sock.recv(max_bytes)
        if not data:
            raise ConnectionError("device closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


class RawLink:
    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.transport = _Socket(url) if url.startswith("socket://") else open_transport(url, None)
        self.timeout = timeout
        self.decoder = framing.FrameDecoder(m.HEADER_SIZE + m.MAX_PAYLOAD)
        self.queue: list[m.Frame | framing.BadFrame] = []
        self.seq = 0

    def next_seq(self) -> int:
        self.seq = self.seq % 0xFFFF + 1
        return self.seq

    def send(self, msg: m.Message, seq: int | None = None) -> int:
        seq = self.next_seq() if seq is None else seq
        self.transport.write(framing.pack(m.encode(msg, seq)))
        return seq

    def send_body(self, body: bytes) -> None:
        """A frame with a good CRC around any body (for bad headers and payloads)."""
        self.transport.write(framing.pack(body))

    def send_bytes(self, data: bytes) -> None:
        self.transport.write(data)

    def receive(self, timeout: float | None = None) -> m.Frame | framing.BadFrame | None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.queue:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.transport.read(4096, left)
            for event in self.decoder.feed(data):
                self.queue.append(event if isinstance(event, framing.BadFrame) else m.decode(event))
        return self.queue.pop(0)

    def answer(self, seq: int, timeout: float | None = None) -> m.Message:
        """The device's answer to request `seq` (other frames are dropped)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (left := deadline - time.monotonic()) > 0:
            frame = self.receive(left)
            if isinstance(frame, m.Frame) and frame.seq == seq:
                return frame.message
        raise AssertionError(f"no answer to seq {seq} within the timeout")

    def request(self, msg: m.Message) -> m.Message:
        return self.answer(self.send(msg))

    def hello(self, tries: int = 3) -> m.HelloInfo:
        """HELLO, asked again if unanswered (a board may still be restarting)."""
        for attempt in range(tries):
            self.send_bytes(b"\x00")
            try:
                info = self.request(m.Hello(m.PROTOCOL_VERSION, m.MAX_PAYLOAD))
            except AssertionError:
                if attempt == tries - 1:
                    raise
                continue
            assert isinstance(info, m.HelloInfo), info
            return info
        raise AssertionError("unreachable")

    def list_all(self) -> list[m.Entry]:
        entries: list[m.Entry] = []
        while True:
            page = self.request(m.ListSlots(len(entries)))
            assert isinstance(page, m.ListPage), page
            entries += page.entries
            if not page.entries or len(entries) >= page.total:
                return entries

    def close(self) -> None:
        self.transport.close()
