"""Pulumi entry point (Pulumi.yaml `main` is the project root); the program lives in infra/."""

from infra.program import main

main()
