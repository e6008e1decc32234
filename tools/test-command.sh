#!/usr/bin/env bash
# The one command that installs polroute and runs its whole test suite.
# README.md quotes the command line below verbatim and .ci/run executes this
# file (and checks that README.md still quotes it), so the two cannot drift.
# Run as root so that the kernel comparison tests (tests/kernel) can use
# `ip netns`; POLROUTE_REQUIRE_KERNEL=1 makes skipping them a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv && .venv/bin/pip install '.[test]' && .venv/bin/python -m pytest
