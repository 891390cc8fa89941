"""Any bytes given as a certificate, key or CSR either load or raise InputError: never
another exception, never a traceback for the CLI to print."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.errors import InputError
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_der, cert_pem, load_certificates
from provision.pki.csr import create_csr, csr_bytes, load_csr
from provision.pki.keys import generate_key, load_private_key, serialize_private_key

_KEY = generate_key()
_CA = create_root_ca("Property Root", key=_KEY)
_SEEDS: list[bytes] = [
    serialize_private_key(_KEY),
    serialize_private_key(_KEY, encoding="der"),
    serialize_private_key(_KEY, password=b"pw"),
    serialize_private_key(_KEY, encoding="der", password=b"pw"),
    csr_bytes(create_csr(_KEY, "dev-prop")),
    csr_bytes(create_csr(_KEY, "dev-prop"), "der"),
    cert_pem(_CA.cert),
    cert_der(_CA.cert),
]

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def damaged(draw) -> bytes:
    seed = bytearray(draw(st.sampled_from(_SEEDS)))
    action = draw(st.sampled_from(["flip", "truncate", "append", "random"]))
    if action == "flip":
        i = draw(st.integers(0, len(seed) - 1))
        seed[i] ^= draw(st.integers(1, 255))
    elif action == "truncate":
        seed = seed[: draw(st.integers(0, len(seed) - 1))]
    elif action == "append":
        seed += draw(st.binary(min_size=1, max_size=16))
    else:
        seed = bytearray(draw(st.binary(max_size=300)))
    return bytes(seed)


def _loads_or_input_error(fn, data: bytes) -> None:
    try:
        fn(data)
    except InputError as err:
        assert "\n" not in err.message and err.message.startswith("x: ")


@SETTINGS
@given(damaged())
def test_certificates(data: bytes) -> None:
    _loads_or_input_error(lambda d: load_certificates(d, "x"), data)


@SETTINGS
@given(damaged())
def test_private_keys(data: bytes) -> None:
    _loads_or_input_error(lambda d: load_private_key(d, b"pw", "x"), data)
    _loads_or_input_error(lambda d: load_private_key(d, None, "x"), data)


@SETTINGS
@given(damaged())
def test_csrs(data: bytes) -> None:
    _loads_or_input_error(lambda d: load_csr(d, "x"), data)
