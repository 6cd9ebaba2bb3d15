"""What the benchmarks share: scratch databases (each script fills its own, never the switch's), and timing."""

import statistics
import time


def ensure_database(name, say=print):
    """Create database ``name`` beside the configured one if it does not exist yet."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None, dbname="postgres",
        autocommit=True,
    ) as conn:  # fmt: skip
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
            say(f"created database {name}")


def timed(fn, runs):
    """Median and minimum wall time of ``fn`` in ms over ``runs`` runs, and its last result."""
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times), result
