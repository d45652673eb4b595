"""Runs, on loopback and for as long as its standard input stays open, what the MLflow tests talk to.

    python scripts/mlflow_test_server.py server --root /tmp/x      an MLflow tracking server
    python scripts/mlflow_test_server.py forward --to 5000         a TCP forwarder to port 5000

`server` starts `python -m mlflow server` with a SQLite backend (<root>/mlflow.db) and proxied artifacts
(<root>/artifacts) on a free port, waits until /health answers, and prints its URL on one line; <root>
is removed when it stops (it stays, with its server.log, when the server does not start).
`forward` prints its own URL at once: stopping it is a server that went away mid-job, while the real
server behind it keeps what was logged before. Either ends, with everything it started, when its
standard input closes (the test stopped it, or the test process died), so no server outlives a test.
"""
import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def exit_when_stdin_closes(cleanup) -> None:
    def watch():
        while sys.stdin.buffer.read(1):
            pass
        cleanup()
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()


def serve(root: str, timeout: float) -> int:
    port = free_port()
    os.makedirs(root, exist_ok=True)
    log = open(os.path.join(root, "server.log"), "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
         "--artifacts-destination", os.path.join(root, "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # No background job runner: the tests log runs, they do not run MLflow jobs.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})

    def stop():
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop_and_clean():
        stop()
        server.wait()
        shutil.rmtree(root, ignore_errors=True)
    exit_when_stdin_closes(stop_and_clean)

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            print(f"error: mlflow server exited with {server.returncode}; see {root}/server.log", flush=True)
            return 1
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    print(url, flush=True)
                    # Until standard input closes (its watcher stops the server, cleans up and exits).
                    threading.Event().wait()
        except OSError:
            time.sleep(0.25)
    stop()
    print(f"error: mlflow server did not answer /health within {timeout:.0f} s; see {root}/server.log", flush=True)
    return 1


async def forward(target: int) -> None:
    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def connect(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    listener = await asyncio.start_server(connect, "127.0.0.1", 0)
    print(f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}", flush=True)
    exit_when_stdin_closes(lambda: None)
    async with listener:
        await listener.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    server = modes.add_parser("server")
    server.add_argument("--root", required=True)
    server.add_argument("--timeout", type=float, default=300)
    forwarder = modes.add_parser("forward")
    forwarder.add_argument("--to", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "server":
        return serve(os.path.abspath(args.root), args.timeout)
    asyncio.run(forward(args.to))
    return 0


if __name__ == "__main__":
    sys.exit(main())
