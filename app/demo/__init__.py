"""The demo data the service ships: loading it (load.py) with its vectors (vectors.py), and synthetic
scale data for benchmarks (synthetic.py, `flask demo synthetic`).

data/ holds the generated JSON and vectors; banks.py reads data/banks.json, the text banks shared with the
offline generator (tools/generate_demo.py). A year of demo pipeline history is app/pipeline/demo.py.
"""
