"""`python -m polroute` is the `polroute` command."""

from polroute.cli.app import main

if __name__ == "__main__":
    raise SystemExit(main())
