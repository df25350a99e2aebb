import logging

import pytest


@pytest.fixture(scope='session')
def spark():
    r"""A local Spark session with two cores for the Spark engine's tests
    (skipped without :obj:`pyspark`), shared by the test modules."""
    pyspark_sql = pytest.importorskip('pyspark.sql')
    session = (pyspark_sql.SparkSession.builder.master('local[2]')
               .appName('torch_autoscale-tests')
               .config('spark.ui.enabled', 'false')
               .config('spark.sql.shuffle.partitions', '2')
               .config('spark.default.parallelism', '2')
               .config('spark.driver.memory', '2g')
               # Small data: adaptive re-planning costs more than it saves.
               .config('spark.sql.adaptive.enabled', 'false')
               .getOrCreate())
    session.sparkContext.setLogLevel('ERROR')
    logging.getLogger('py4j').setLevel(logging.WARNING)
    yield session
    session.stop()
