"""``python -m benchmarks.cluster``: where the Spark engine's time goes, local[2] vs a standalone cluster.

The README's 1M-row Parquet input (``benchmarks.batch.write_inputs``) through ``--engine local
--workers 2``, ``--engine spark --master local[2]`` and ``--master spark://`` on a master with two
1-core workers on 127.0.0.1 (``tests/runtime/cluster.py``, stopped by PID at the end), plus
cluster variants (``--batch-size``, which sets Arrow's ``maxRecordsPerBatch``; Python worker reuse
off). Each Spark run writes an uncompressed event log; its phases are read from it: session start
(command start to the application's start), each Spark job's wall time, and the scoring stage's
task time split by Spark's own Python metrics (summed over tasks, so up to 2x wall on 2 cores).

    python -m benchmarks.cluster --data ../shared/data/aclImdb_v1_labeled.tar.gz --copies 40
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from benchmarks.batch import exactly_once, ids_of, timed, write_inputs
from benchmarks.common import add_data_option, data_path
from benchmarks.sparklog import phases, spark_args
from runtime.errors import ArgumentParser

def run(name: str, args: list[str], parquet: str, out: str, rows: int) -> dict:
    """One command, timed; its output checked (each id once, in order for the local engine)."""
    output = os.path.join(out, name.replace(" ", "_").replace("/", "_") + ".parquet")
    event_dir = tempfile.mkdtemp(prefix="events-", dir=out)
    is_spark = args[:1] == ["spark"]
    if is_spark:
        args = spark_args(args[1], event_dir, *args[2:])
    started = time.time()
    result = timed([sys.executable, "-m", "runtime.batch", parquet, output, "--id-column", "id", *args], os.getcwd())
    result.update(name=name, rows_per_s=round(rows / result["seconds"]),
                  exactly_once=result["code"] == 0 and exactly_once(ids_of(output), rows, not is_spark))
    if is_spark and result["code"] == 0:
        result.update(phases(event_dir, started))
        result["steady rows/s"] = round(rows / result["last job s"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--copies", type=int, default=40, help="times the 25,000 test reviews are repeated")
    parser.add_argument("--out", default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args(argv)
    from tests.runtime.cluster import Cluster

    out = args.out or tempfile.mkdtemp(prefix="bench-cluster-")
    os.makedirs(out, exist_ok=True)
    parquet, _, rows = write_inputs(data_path(args.data), out, args.copies)
    cluster = Cluster(tempfile.mkdtemp(prefix="cluster-", dir=out))
    os.environ.update({k: v for k, v in cluster.env().items() if k.startswith(("SPARK_", "PYSPARK_"))})
    os.environ["PYTHONPATH"] = os.getcwd()
    try:
        cluster.start()
        for name, extra in [
                ("local --workers 2", ["--workers", "2"]),
                ("spark local[2]", ["spark", "local[2]"]),
                ("spark cluster", ["spark", cluster.url]),
                ("spark cluster --batch-size 1024", ["spark", cluster.url, "--batch-size", "1024"]),
                ("spark cluster --batch-size 16384", ["spark", cluster.url, "--batch-size", "16384"]),
                ("spark cluster reuse=false",
                 ["spark", cluster.url, "--spark-conf", "spark.python.worker.reuse=false"])]:
            print(json.dumps(run(name, extra, parquet, out, rows)), flush=True)
    finally:
        alive = cluster.stop()
    print(json.dumps({"cluster processes left": alive}))
    return 0 if not alive else 1


if __name__ == "__main__":
    sys.exit(main())
