"""``python -m bench`` entry point; the work is in :mod:`bench.cli`."""

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
