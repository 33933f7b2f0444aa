"""Build docs/api.md (the front door's API page) from the docstrings, with pdoc.

    python tools/api_docs.py            # rewrite docs/api.md
    python tools/api_docs.py --check    # fail if docs/api.md is stale or references break
    python tools/api_docs.py --html DIR # also render pdoc's HTML pages into DIR

pdoc reads the objects (signatures, docstrings in Google style) and converts
the docstrings to Markdown; this script picks the front door (``knotsense``,
``knotsense.aio`` and the classes they return) and writes one page. Every
``:class:``/``:func:``/``:mod:``/``:meth:``/``:data:`` reference in those
docstrings must resolve to a real object, and pdoc must render without a
warning; tests/test_api_docs.py runs ``--check``.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api.md"
MODULES = ("knotsense", "knotsense.aio")
CLASSES = (
    "knotsense.host.sync.Device",
    "knotsense.host.device.AsyncDevice",
    "knotsense.aio.Connecting",
    "knotsense.host.session.Session",
    "knotsense.host.tables.ForceTable",
    "knotsense.dsp.results.Analysis",
)
ROLE = re.compile(r":(?:py:)?(mod|func|data|const|class|meth|attr|exc|obj):`~?([^`]+)`")


def _resolve(target: str, context: str) -> bool:
    """Whether *target* (dotted, maybe relative to module/class *context*) names an object."""
    candidates = [target] if "." in target else []
    parts = context.split(".")
    candidates += [".".join([*parts[:i], target]) for i in range(len(parts), 0, -1)]
    for name in candidates:
        pieces = name.split(".")
        for cut in range(len(pieces), 0, -1):
            try:
                obj = importlib.import_module(".".join(pieces[:cut]))
            except ImportError:
                continue
            try:
                for attr in pieces[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                break
            return True
    return False


def _load_front_door() -> None:
    """Resolve the package's lazy names once, so pdoc finds them in the module."""
    import knotsense

    for name in knotsense.__all__:
        getattr(knotsense, name)


def _doc_objects() -> list[object]:
    import pdoc.doc

    _load_front_door()

    out: list[object] = []
    for name in MODULES:
        out.append(pdoc.doc.Module(importlib.import_module(name)))
    for dotted in CLASSES:
        module, _, cls = dotted.rpartition(".")
        out.append(pdoc.doc.Module(importlib.import_module(module)).get(cls))
    return out


def _public(member: object) -> bool:
    name = member.name  # type: ignore[attr-defined]
    return not name.startswith("_") or name in ("__init__",)


def build() -> tuple[str, list[str]]:
    """The page's Markdown and the problems found (broken references, pdoc warnings)."""
    import pdoc.doc
    import pdoc.docstrings

    problems: list[str] = []
    lines = [
        "# API: the front door",
        "",
        "Generated from the docstrings by `tools/api_docs.py` (pdoc); do not edit.",
        "Regenerate with `python tools/api_docs.py`; `tests/test_api_docs.py` fails",
        "when this page is stale or a reference in the docstrings does not resolve.",
        "",
    ]

    def text(doc: object, context: str) -> str:
        raw = re.sub(r"(:[a-z]+:`)~", r"\1", doc.docstring)  # type: ignore[attr-defined]
        for _, target in ROLE.findall(raw):
            if not _resolve(target, context):
                problems.append(f"{context}: reference {target!r} does not resolve")
        return pdoc.docstrings.convert(raw, "google", None).strip()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for doc in _doc_objects():
            if isinstance(doc, pdoc.doc.Module):
                lines += [f"## `{doc.fullname}`", "", text(doc, doc.fullname), ""]
                for member in doc.members.values():
                    if isinstance(member, pdoc.doc.Function) and _public(member):
                        lines += [
                            f"### `{member.fullname}{member.signature}`",
                            "",
                            text(member, doc.fullname),
                            "",
                        ]
                continue
            assert isinstance(doc, pdoc.doc.Class), doc
            lines += [f"## class `{doc.fullname}`", "", text(doc, doc.fullname), ""]
            for member in doc.own_members:
                if not _public(member) or member.name == "__init__":
                    continue
                if isinstance(member, pdoc.doc.Function):
                    head = f"`{member.name}{member.signature_without_self}`"
                elif isinstance(member, pdoc.doc.Variable) and member.docstring:
                    head = f"`{member.name}`"
                else:
                    continue
                body = text(member, doc.fullname)
                first = body.split("\n\n", 1)[0].replace("\n", " ") if body else ""
                lines.append(f"- {head}" + (f": {first}" if first else ""))
            lines.append("")
    problems += [f"pdoc: {w.message}" for w in caught]
    return "\n".join(lines).rstrip() + "\n", problems


def render_html(out_dir: Path) -> list[str]:
    """pdoc's HTML pages of the front door in *out_dir*; returns pdoc's warnings."""
    import pdoc
    import pdoc.render

    _load_front_door()
    # knotsense brings knotsense.aio (it is in its __all__)
    modules = sorted({c.rpartition(".")[0] for c in CLASSES} - {"knotsense.aio"} | {"knotsense"})
    pdoc.render.configure(docformat="google")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules, output_directory=out_dir)
    return [f"pdoc: {w.message}" for w in caught]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is stale")
    parser.add_argument("--html", type=Path, metavar="DIR", help="also render HTML into DIR")
    args = parser.parse_args(argv)
    page, problems = build()
    if args.html is not None:
        problems += render_html(args.html)
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
        if current != page:
            print(f"{PAGE}: stale; run python tools/api_docs.py", file=sys.stderr)
            return 1
    else:
        PAGE.write_text(page, encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
