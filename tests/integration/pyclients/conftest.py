"""The current Python clients from PyPI (confluent-kafka 2.16 with its bundled
librdkafka, kafka-python 3.0), run from the virtualenv that deps.sh makes, against real
samsa-server processes.

The Broker fixtures are the ones of ../python/conftest.py (loaded under another module
name, so both folders keep a module called `conftest`); ../python is on sys.path so its
helpers (clients, kwire, groups_util) and test modules can be reused unchanged."""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.abspath(os.path.join(HERE, "..", "python"))
if PYDIR not in sys.path:
    sys.path.append(PYDIR)

_spec = importlib.util.spec_from_file_location("samsa_python_conftest",
                                               os.path.join(PYDIR, "conftest.py"))
base = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = base
_spec.loader.exec_module(base)

# Fixtures and the report hook, re-exported so pytest finds them in this conftest.
Broker = base.Broker
BrokerFactory = base.BrokerFactory
broker_factory = base.broker_factory
broker = base.broker
_test_deadline = base._test_deadline
pytest_runtest_makereport = base.pytest_runtest_makereport
wait_until = base.wait_until  # reused modules do `from conftest import wait_until`

# Group members that run in their own processes (groups_util.Member) use this venv's
# interpreter, so they too run the new confluent-kafka.
import groups_util  # noqa: E402

groups_util.PY = sys.executable


def _check_versions():
    import confluent_kafka
    import kafka
    want = {"confluent-kafka": "2.16.1", "kafka-python": "3.0.12"}
    have = {"confluent-kafka": confluent_kafka.__version__, "kafka-python": kafka.__version__}
    if have != want:
        raise RuntimeError("pyclients: expected %s, this interpreter (%s) has %s: "
                           "run tests/integration/pyclients/deps.sh and use its venv"
                           % (want, sys.executable, have))


_check_versions()


def pytest_report_header(config):
    import confluent_kafka
    import kafka
    return ["clients: confluent-kafka %s (librdkafka %s), kafka-python %s, python %s"
            % (confluent_kafka.__version__, confluent_kafka.libversion()[0],
               kafka.__version__, sys.executable)]
