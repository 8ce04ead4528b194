"""Entry point for spark-submit: `spark-submit [options] scripts/rollup_spark_submit.py build|update|status --logs PATH`.

The rollup command with the Spark engine, in the session spark-submit configured (its
--master, executors and memory). See docs/scale.md.
"""

import sys

from monitoring.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["rollup", *sys.argv[1:], "--engine", "spark"]))
