"""`python -m snnexp`: the `snnexp` command."""

from snnexp.cli import main

main(prog_name="snnexp")
