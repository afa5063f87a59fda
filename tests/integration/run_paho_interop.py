#!/usr/bin/python3
"""Run Eclipse paho.mqtt.testing's interoperability/client_test.py (MQTT 3.1.1) against a broker.

The suite itself is NOT part of this repository: bring a checkout of eclipse/paho.mqtt.testing
and pass its interoperability/ directory (see README.md, "Interoperability suite").

    # start a broker on a free loopback port (meshmq, or mosquitto with
    # MESHMQ_TEST_BROKER=mosquitto), run the suite, stop the broker:
    /usr/bin/python3 tests/integration/run_paho_interop.py /tmp/paho-testing/interoperability

    # or against a broker that is already running:
    /usr/bin/python3 tests/integration/run_paho_interop.py DIR --port 18884 [Test.test_keepalive ...]

Why a wrapper: client_test.py reads --hostname/--port with getopt, then calls unittest.main(),
which parses the same sys.argv and rejects those options (and its own "-h" collides with
"--help"). The wrapper hands unittest a clean argv. Exit code: unittest's (0 = all passed).
"""

import argparse
import os
import runpy
import sys
import tempfile
import unittest
from pathlib import Path


def run_suite(interop_dir: Path, host: str, port: int, tests: list) -> int:
    os.chdir(interop_dir)
    sys.path.insert(0, str(interop_dir))  # client_test.py imports the mqtt package beside it
    sys.argv = ["client_test.py", f"--hostname={host}", f"--port={port}"]
    real_main = unittest.main
    unittest.main = lambda *a, **k: real_main(argv=["client_test.py", "-v"] + tests)
    try:
        runpy.run_path("client_test.py", run_name="__main__")
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("interop_dir", type=Path, help="paho.mqtt.testing/interoperability")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, help="use a running broker instead of starting one")
    ap.add_argument("tests", nargs="*", help="e.g. Test.test_keepalive (default: all)")
    args = ap.parse_args()
    d = args.interop_dir.resolve()
    if not (d / "client_test.py").exists():
        ap.error(f"{d}/client_test.py not found")
    if args.port:
        return run_suite(d, args.host, args.port, args.tests)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import harness
    work = Path(tempfile.mkdtemp(prefix="meshmq-interop-"))
    opts = {}
    if not harness.is_mosquitto():
        # test_subscribe_failure expects SUBACK 0x80 for test/nosubscribe: an ACL rule says so.
        acl = work / "interop.acl"
        acl.write_text("deny subscribe all test/nosubscribe\n")
        opts["auth.acl_file"] = str(acl)
    broker = harness.Broker(work, opts, name="interop").start()
    print(f"{broker.kind} on 127.0.0.1:{broker.port}, log {broker.log_path}", file=sys.stderr)
    try:
        rc = run_suite(d, "127.0.0.1", broker.port, args.tests)
    finally:
        code = broker.stop()
        if code != 0:
            print(f"broker exited with code {code} after SIGTERM", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
