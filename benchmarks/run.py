"""Run every knotsense benchmark: ``python benchmarks/run.py [--quick] [--json] [NAME ...]``.

Each ``benchmarks/bench_*.py`` module defines ``NAME`` and
``run(quick: bool) -> dict`` returning at least ``value``, ``unit``,
``baseline`` and ``ratio`` (the measured figure against a baseline run in the
same process, so machine noise cancels). ``--json`` prints one JSON object
with a key per benchmark.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REQUIRED_KEYS = ("value", "unit", "baseline", "ratio")


def discover() -> dict[str, ModuleType]:
    """Load every ``bench_*.py`` next to this file, keyed by its ``NAME``."""
    found: dict[str, ModuleType] = {}
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found[module.NAME] = module
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 30 s each")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args(argv)

    benches = discover()
    unknown = [n for n in args.names if n not in benches]
    if unknown:
        print(
            f"run.py: error: unknown benchmark(s): {', '.join(unknown)}; "
            f"known: {', '.join(benches)}",
            file=sys.stderr,
        )
        return 2
    selected = args.names or list(benches)

    results: dict[str, dict] = {}
    for name in selected:
        started = time.perf_counter()
        result = benches[name].run(quick=args.quick)
        missing = [k for k in REQUIRED_KEYS if k not in result]
        if missing:
            raise RuntimeError(f"benchmark {name} did not report {missing}")
        result["seconds"] = round(time.perf_counter() - started, 2)
        results[name] = result
        if not args.json:
            extras = {k: v for k, v in result.items() if k not in (*REQUIRED_KEYS, "seconds")}
            print(
                f"{name}: {result['value']:.4g} {result['unit']}  "
                f"(baseline {result['baseline']:.4g}, ratio {result['ratio']:.3g}x, "
                f"{result['seconds']} s)"
            )
            for key, value in extras.items():
                print(f"    {key}: {value}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
