"""Oracle tests that run a reference implementation in its own environment.

`nannyml_cbpe.py` runs inside `.venv-nannyml` (make nannyml-env) and imports NannyML:
it is a script for that interpreter, not a module of this test session.
"""

collect_ignore = ["nannyml_cbpe.py"]
