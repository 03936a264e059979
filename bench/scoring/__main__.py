"""``python -m bench.scoring``."""

from bench.scoring.run import main

main()
