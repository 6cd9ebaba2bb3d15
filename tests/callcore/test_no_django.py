"""callcore never imports Django: it runs inside Kamailio, far from the portal's settings and database."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Kamailio injects the KSR module into its embedded interpreter; a stand-in lets
# the KEMI adapter be imported here too.
PROGRAM = """
import importlib, pkgutil, sys, types
sys.modules.setdefault("KSR", types.ModuleType("KSR"))
import callcore, callcore.contract, callcore.snapshot
names = [m.name for m in pkgutil.walk_packages(callcore.__path__, "callcore.") if m.name != "callcore.__main__"]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "django")
assert not leaked, f"callcore imported {leaked[:5]}"
print("\\n".join(names))
"""


def test_callcore_imports_no_django_module():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}  # no DJANGO_SETTINGS_MODULE to lean on
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    imported = result.stdout.split()
    assert "callcore.contract" in imported and "callcore.snapshot" in imported
