"""Guards on the dependency rules of docs/architecture: one owner per third-party library, and
no module reaching into another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "provision"

# library → where it may be imported (paths relative to provision/; a folder covers its files)
OWNERS = {
    "cryptography": ("pki/", "check.py"),
    "construct": (
        "bundle/format.py",
        "bundle/esp_secure_cert.py",
        "bundle/esp_cust_flash.py",
        "bundle/esp_partitions.py",
        "link/messages.py",
    ),
    "serial": ("transport/serial.py",),
    "ssl": ("tls/",),
    "cbor2": ("dialects/nrf_attestation.py",),
}


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (p.relative_to(PACKAGE).as_posix(), ast.parse(p.read_text(), str(p)))
        for p in sorted(PACKAGE.rglob("*.py"))
    ]


def _imports(tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def test_each_library_is_imported_only_by_its_owner() -> None:
    stray = [
        f"{path}:{line} imports {module}"
        for path, tree in _modules()
        for line, module, _ in _imports(tree)
        for library, owners in OWNERS.items()
        if module.split(".")[0] == library and not path.startswith(owners)
    ]
    assert stray == []


def test_no_private_name_is_imported_across_modules() -> None:
    stray = [
        f"{path}:{line} imports {name} from {module}"
        for path, tree in _modules()
        for line, module, names in _imports(tree)
        if module.startswith("provision")
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert stray == []


# The data path's lower layers (architecture.md): they never import the layers above them.
LOWER = {"bundle", "link", "transport", "pki"}
UPPER = {"check", "cli", "line", "sim", "device", "tls", "registry", "packing", "urls"}


def _provision_imports(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "provision":
                names = [f"provision.{alias.name}" for alias in node.names]
        found += [(node.lineno, n) for n in names if n.startswith("provision.")]
    return found


def _layer(path_or_module: str) -> str:
    first = path_or_module.removeprefix("provision.").replace("/", ".").split(".")[0]
    return first.removesuffix(".py")


def test_lower_layers_never_import_upper_ones() -> None:
    stray = [
        f"{path}:{line} imports {module}"
        for path, tree in _modules()
        if _layer(path) in LOWER
        for line, module in _provision_imports(tree)
        if _layer(module) in UPPER or (_layer(path) == "bundle" and _layer(module) == "pki")
    ]
    assert stray == []


def test_transport_names_no_simulator_and_schemes_live_in_one_place() -> None:
    for path, tree in _modules():
        text = ast.unparse(tree)
        if _layer(path) == "transport":
            assert "provision.sim" not in text and "provision.line" not in text, path
        if path != "urls.py":
            assert "open_sim_transport" not in text or _layer(path) == "sim", path
            assert "open_jig_transport" not in text or path == "line/simulate.py", path


def test_dialects_do_not_import_tls_check_or_the_cli() -> None:
    stray = [
        f"{path}:{line} imports {module}"
        for path, tree in _modules()
        if _layer(path) == "dialects"
        for line, module in _provision_imports(tree)
        if _layer(module) in {"tls", "check", "cli", "line", "sim", "device", "registry"}
    ]
    assert stray == []


def test_every_error_a_dialect_raises_has_a_stable_code() -> None:
    """--json and factory scripts branch on `code`; a dialect error without one is a bare
    message a script can only pattern-match."""
    errors = {"DeviceError", "LinkError", "PolicyError", "InputError", "BundleError"}
    stray = [
        f"{path}:{node.lineno} {node.func.id}(...) without code="
        for path, tree in _modules()
        if _layer(path) == "dialects"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in errors
        and not any(k.arg == "code" for k in node.keywords)
    ]
    assert stray == []
