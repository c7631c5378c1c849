"""Seed a checkout of the product that has no `flask bench-seed` yet (an older commit):
this harness's seed (app/cli.py's seed_benchmark) run against that checkout's models.

    python bench/seed_compat.py <harness app/cli.py> USERS TASKS     # cwd: the product checkout
"""
import importlib.util
import os
import sys

sys.path.insert(0, os.getcwd())
from app import create_app  # the checkout's own package, from the path set just above

cli_path, users, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spec = importlib.util.spec_from_file_location("app._bench_cli", cli_path)
module = importlib.util.module_from_spec(spec)
module.__package__ = "app"
spec.loader.exec_module(module)
with create_app().app_context():
    print("seeded", module.seed_benchmark(users, tasks))
