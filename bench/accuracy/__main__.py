"""``python -m bench.accuracy``: run the accuracy benchmark (see :mod:`bench.accuracy.run`)."""

from bench.accuracy.run import main

raise SystemExit(main())
