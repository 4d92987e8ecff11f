"""Offline tools, never imported by the service (the import-linter contract in pyproject.toml).

generate_demo.py   writes app/demo/data/*.json from models/enums.py and the text banks, and checks them
                   (`python -m tools.generate_demo`; the check also runs in tests/tools/)
"""
