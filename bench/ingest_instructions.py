#!/usr/bin/env python3
"""Ingest's cost in machine instructions: a real `blastwall serve` against decode alone.

`bench/ingest.py` compares rates measured in seconds. On a shared virtual machine the speed
of a core drifts (the decode-alone rate alone has varied from 25,000 to 47,000 spans/s
between runs minutes apart on one machine), so a ratio of two timings taken at different
moments moves with it. Instructions do not: Valgrind's callgrind counts the instructions a
process executes, the same for the same code and input whatever else the machine is doing.

Both sides run under callgrind, on the same `bench/decode.py` batches:

  decode alone  `decode_protobuf` over N batches in a process of its own; the count of a
                run over no batch is taken off, so imports and start-up do not count
  server        `blastwall serve` on a fresh SQLite installation with detection off, the
                batches POSTed to /v1/traces one at a time after two warm-up batches; the
                server's counters are zeroed before the first measured batch and dumped
                after the last (and after the WAL checkpointer's pass), so every thread
                of the server counts: HTTP, authentication, decode, normalise, storage,
                commit, checkpoint

It prints instructions per span for each and their ratio, the work-only counterpart of
ingest.py's "end to end within 5x of decode alone". It does not replace the timed
benchmark: instructions do not show cache misses, waits or system calls' time in the
kernel. Runs take some minutes (callgrind runs code about 50 times slower).

  python bench/ingest_instructions.py [--batches 4] [--spans 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode import make_batches
from harness import BenchError, base_env, blastwall, free_port, log
from ingest import GOAL_RATIO, inventory

WARM_UP = 2
_DECODE = """
import pickle, sys
from blastwall.telemetry.otlp import decode_protobuf
bodies = pickle.load(open(sys.argv[1], "rb"))
for body in bodies[: int(sys.argv[2])]:
    decode_protobuf(body)
"""


def callgrind_total(out_file: Path) -> int:
    """The instruction count of a callgrind output file."""
    text = out_file.read_text(errors="replace")
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if found is None:
        raise BenchError(f"no instruction count in {out_file}")
    return int(found.group(1))


def _valgrind(out_file: Path, command: list[str]) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *command]


def start_decode(work: Path, batches_file: Path, batches: int) -> dict[int, tuple[Path, Any]]:
    """Decode runs over no batch and over `batches` batches, started side by side."""
    script = work / "decode_only.py"
    script.write_text(_DECODE)
    runs: dict[int, tuple[Path, Any]] = {}
    for count in (0, batches):
        out = work / f"decode.{count}.out"
        command = [sys.executable, str(script), str(batches_file), str(count)]
        runs[count] = (
            out,
            subprocess.Popen(
                _valgrind(out, command),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    return runs


def decode_instructions(runs: dict[int, tuple[Path, Any]]) -> int:
    """Instructions of decoding the batches: the run over them less the run over none."""
    for count, (_, proc) in runs.items():
        _, errors = proc.communicate()
        if proc.returncode != 0:
            raise BenchError(f"decode run over {count} batches failed:\n{errors[-2000:]}")
    counts = sorted(runs)
    return callgrind_total(runs[counts[-1]][0]) - callgrind_total(runs[counts[0]][0])


def server_instructions(work: Path, bodies: list[bytes]) -> int:
    """Instructions the server spends on `bodies[WARM_UP:]`, every thread counted."""
    env = base_env(work / "data", None)
    env["BLASTWALL_DETECTION"] = "false"
    blastwall(["init"], env, work)
    blastwall(["inventory", "apply", str(inventory(work, "full"))], env, work)
    token = blastwall(["token", "create", "--name", "bench", "--role", "admin"], env, work)
    port = free_port()
    out = work / "server.out"
    command = [sys.executable, "-m", "blastwall.cli", "serve", "--host", "127.0.0.1"]
    with (work / "server.log").open("w") as server_log:
        proc = subprocess.Popen(
            _valgrind(out, [*command, "--port", str(port)]),
            env=env,
            cwd=work,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    headers = {
        "Authorization": f"Bearer {token.strip()}",
        "Content-Type": "application/x-protobuf",
    }

    def control(flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(proc.pid)], check=True, capture_output=True)

    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise BenchError(f"the server exited {proc.returncode}; see {work}/server.log")
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("the server did not answer within 600 s under callgrind")
            time.sleep(1)
        with httpx.Client(timeout=900) as client:

            def send(body: bytes) -> None:
                answer = client.post(f"{base}/v1/traces", content=body, headers=headers)
                if answer.status_code != 200:
                    raise BenchError(f"POST /v1/traces: {answer.status_code} {answer.text[:200]}")

            for body in bodies[:WARM_UP]:
                send(body)
            time.sleep(3)  # the WAL checkpointer's pass after the warm-up
            control("-z")
            for body in bodies[WARM_UP:]:
                send(body)
            time.sleep(3)  # and after the measured batches: it is ingest's cost too
            control("-d")
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    dumps = sorted(work.glob("server.out.*"))
    if not dumps:
        raise BenchError("callgrind wrote no dump of the measured batches")
    return callgrind_total(dumps[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=4, help="measured batches")
    parser.add_argument("--spans", type=int, default=500, help="spans per batch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="blastwall-instructions-"))
    try:
        log(f"building {WARM_UP + args.batches} batches of {args.spans} spans ...")
        bodies = make_batches(WARM_UP + args.batches, args.spans)
        batches_file = work / "batches.pickle"
        batches_file.write_bytes(pickle.dumps(bodies[WARM_UP:]))
        spans = args.batches * args.spans
        log("decode alone and the server under callgrind (some minutes) ...")
        runs = start_decode(work, batches_file, args.batches)
        try:
            server = server_instructions(work, bodies)
        except BaseException:
            for _, proc in runs.values():
                proc.kill()
            raise
        decode = decode_instructions(runs)
    except BenchError as exc:
        log(f"could not run: {exc}")
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = server / decode
    result = {
        "spans": spans,
        "decode_instructions_per_span": decode / spans,
        "server_instructions_per_span": server / spans,
        "ratio": ratio,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    print(
        f"Blastwall ingest in instructions: {args.batches} OTLP protobuf batches x {args.spans} "
        "spans, SQLite, detection off"
    )
    print(f"  decode alone      {decode / spans:>12,.0f} instructions a span")
    print(f"  server, end to end{server / spans:>12,.0f} instructions a span")
    verdict = "within" if ratio <= GOAL_RATIO else "over"
    print(f"  ratio             {ratio:>12.2f}x ({verdict} the {GOAL_RATIO:.0f}x of the goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
