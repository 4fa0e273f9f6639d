"""Real servers the fleet tests start themselves: a private redis-server on its own port (so a
test may kill and restart it), an S3-compatible endpoint (moto's server, over real HTTP), and
`vidmorph serve` / `vidmorph worker` processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[1]
#: credentials for the test S3 endpoint; the standard AWS variables, as boto3 reads them
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "vidmorph-test",
    "AWS_SECRET_ACCESS_KEY": "vidmorph-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


class RedisServer:
    """A private redis-server: nothing on disk, so a restart loses every queued message."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (.ci/run installs it)")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class S3Endpoint:
    """moto's S3 over HTTP on a loopback port; stop() and start() again keep its objects
    (they live in this test process), so a test can take storage down for a while."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: object | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        wait_port(self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]
            self._server = None


@contextmanager
def s3_endpoint() -> Iterator[S3Endpoint]:
    endpoint = S3Endpoint()
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


def vidmorph_env(**settings: str) -> dict[str, str]:
    """This environment less any VIDMORPH_*, plus `settings` as VIDMORPH_<NAME>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDMORPH_")}
    env.update(S3_ENV)
    env["PYTHONPATH"] = str(ROOT)
    env.update({f"VIDMORPH_{k.upper()}": v for k, v in settings.items()})
    return env


class Proc:
    """A `python -m vidmorph ...` child process with its output in a log file."""

    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str],
        log: Path,
        *,
        preexec: Callable[[], None] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        """`preexec` runs in the child before it starts (resource limits, signal dispositions);
        `cwd` is its working directory (the project's by default)."""
        self.args, self.log = args, log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "vidmorph", *args],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=preexec,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def peak_rss_bytes(self) -> int:
        """The process's high-water resident set (VmHWM) so far, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmHWM for {self.pid}")

    def kill9(self) -> None:
        """SIGKILL to the whole process group (uvicorn's supervisor and its children)."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_healthy(base_url: str, proc: Proc, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not proc.alive() or time.monotonic() > deadline:
            raise AssertionError(f"{proc.args} did not come up:\n{proc.output()[-4000:]}")
        time.sleep(0.1)


def wait_for(predicate: object, timeout_s: float, what: str, step_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(step_s)
