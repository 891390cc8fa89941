"""Table cells fold instead of ending in "…": in an 80-column log the two intermediate files
of `pki init-ca` were both shown as "ca/intermediate.…"."""

from __future__ import annotations


def test_pki_table_shows_whole_file_names(cli, tmp_path) -> None:
    out = tmp_path / "a-rather-long-folder-name-for-the-ca"
    r = cli(
        ["pki", "init-ca", "--no-password", "-o", out, "--intermediate", "Issuing CA"],
        env={"COLUMNS": "80"},
    )
    assert r.exit_code == 0, r.output
    assert "…" not in r.output
    squeezed = "".join(line.split(" ")[1] for line in r.output.splitlines()[1:] if line.strip())
    for name in ("ca.crt", "ca.key", "intermediate.crt", "intermediate.key"):
        assert name in squeezed or name in r.output


def test_narrow_table_keeps_serial_and_time_whole() -> None:
    import io

    from rich.console import Console

    from provision.cli.common import table

    rows = table("serial")
    rows.add_row("1c50b7e2b498ca229" * 3)
    buffer = io.StringIO()
    Console(file=buffer, width=20).print(rows)
    text = buffer.getvalue()
    assert "…" not in text
    assert "".join(text.split()) == "serial" + "1c50b7e2b498ca229" * 3
