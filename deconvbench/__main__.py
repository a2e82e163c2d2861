"""``python -m deconvbench``."""

from .cli import main

main()
