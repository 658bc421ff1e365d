"""`predlog --help` answers fast: the CLI module imports no heavy library at start-up.

Timing is left to benchmarks; this checks the cause (which modules an import of the
CLI loads), which does not depend on how busy the machine is.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "scipy", "faust", "evidently", "mlflow", "sklearn", "elasticsearch",
         "river", "aiokafka", "kafka")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys; {code}; "
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_importing_the_cli_loads_no_heavy_library():
    assert _loaded_after("import agents.cli") == []


def test_help_loads_no_heavy_library():
    code = ("from typer.testing import CliRunner; from agents.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "r = CliRunner().invoke(app, ['replay', '--help']); assert r.exit_code == 0")
    assert _loaded_after(code) == []
