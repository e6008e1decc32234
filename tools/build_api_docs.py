"""The API reference (HTML, pdoc) of polroute's public API, into build/api
(or the directory given): `python tools/build_api_docs.py [OUTDIR]` with
'.[dev]' installed.  CI builds it (.ci/run, stage "API reference"); warnings
fail the build."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

# the modules the README documents (tests/py/test_api_docs.py checks their docstrings)
MODULES = [
    "polroute",
    "polroute.model.policy",
    "polroute.model.compiled",
    "polroute.model.bulk",
    "polroute.model.lpm",
    "polroute.model.kernel_profile",
    "polroute.iproute2.batch",
    "polroute.iproute2.route_get",
    "polroute.iproute2.keywords",
    "polroute.iproute2.rt_tables",
    "polroute._core.errors",
    "polroute.types.requests",
    "polroute.cli.exitcodes",
]


def main(argv: list[str]) -> int:
    import pdoc

    import polroute

    # the facade loads these lazily; touching them puts them in its namespace for pdoc
    _ = (polroute.Policy, polroute.PolicyError)
    out = Path(argv[0] if argv else "build/api")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdoc.pdoc(*MODULES, output_directory=out)
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    print(f"API reference: {len(pages)} pages in {out}/ (open {out}/index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
