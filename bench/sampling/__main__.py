"""``python -m bench.sampling``."""

from bench.sampling.run import main

main()
