"""check_credential_set reports findings for any content; it never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.check import check_credential_set


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(
                [SlotType.ROOT_CA, SlotType.CLIENT_CERT, SlotType.CLIENT_KEY, SlotType.KEY_PASSWORD]
            ),
            st.sampled_from(list(Encoding)),
            st.binary(max_size=200)
            | st.sampled_from([b"-----BEGIN CERTIFICATE-----\n", b"\x30\x03\x02\x01\x00"]),
        ),
        max_size=4,
        unique_by=lambda t: t[0],
    ),
    target=st.sampled_from(["default", "nrf91", "zephyr"]),
)
def test_never_raises(items, target) -> None:
    cs = CredentialSet.of(Slot(9, t, e, d) for t, e, d in items)
    findings = check_credential_set(cs, target=target, key_password=b"pw")
    for f in findings:
        assert f.code and f.message and "\n" not in f.message
