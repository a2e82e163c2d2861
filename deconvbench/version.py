"""The package's version: one definition, imported by whatever records it (rows, sidecars, env)."""

from __future__ import annotations

VERSION = "0.1.0"
