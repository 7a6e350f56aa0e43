"""Process entry points: the RQ worker (``worker.py``) and the sweeper (``sweeper.py``)."""
