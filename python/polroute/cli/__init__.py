"""The polroute command line: one module per command; ``main`` is the entry point.

``main`` imports cli/app.py when called, so that ``python -m polroute.cli.app``
runs that module without a second copy already imported (runpy's warning).
"""


def main(argv: list[str] | None = None) -> int:
    from polroute.cli.app import main as app_main

    return app_main(argv)


__all__ = ["main"]
