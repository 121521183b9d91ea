#!/usr/bin/env python3
"""Which Kafka APIs does a client command send?  Runs COMMAND against a reference Kafka whose request
logger is at DEBUG (start it with KAFKA_LOG4J_OPTS=-Dlog4j2.configurationFile=<copy of
bin/log4j2-server.properties with logger.requestlogger.level = debug>), then prints the
PLAINTEXT-listener requests (api name + version, in order, consecutive repeats collapsed) that
appeared in the server log meanwhile.

  trace_apis.py /path/to/server.log -- COMMAND ARGS...
"""
import re
import subprocess
import sys
import time


def main():
    log, sep, *cmd = sys.argv[1:]
    assert sep == "--" and cmd, __doc__
    start = open(log, "rb").seek(0, 2)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    time.sleep(1.0)
    with open(log, "rb") as f:
        f.seek(start)
        data = f.read().decode("utf-8", "replace")
    seq = []
    for m in re.finditer(r"Completed request:(\{.*)", data):
        line = m.group(1)
        if '"listener":"PLAINTEXT"' not in line:
            continue
        hdr = re.search(r'"requestApiKeyName":"(\w+)"', line)
        ver = re.search(r'"requestApiVersion":(\d+)', line)
        cid = re.search(r'"clientId":"([^"]*)"', line)
        name = f"{hdr.group(1)}v{ver.group(1)}"
        if seq and seq[-1][0] == name:
            seq[-1][1] += 1
        else:
            seq.append([name, 1, cid.group(1) if cid else ""])
    print(f"$ {' '.join(cmd)}  (exit {p.returncode})")
    print("  " + " -> ".join(f"{n}" + (f" x{c}" if c > 1 else "") for n, c, _ in seq))


if __name__ == "__main__":
    main()
