"""The status page over HTTPS by default: scripts/make_cert.sh makes a self-signed certificate,
the real server (scripts/serve_status.sh -> streamlit with server.sslCertFile/sslKeyFile) serves
the page with it, a real TLS client that trusts that certificate gets the page, plain HTTP gets
nothing, and without a certificate the script refuses to serve unless plain HTTP is asked for."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.config import DEFAULT_MODEL
from tests.helpers import REPO, run

SERVE = REPO / "scripts" / "serve_status.sh"
MAKE_CERT = REPO / "scripts" / "make_cert.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tls")
    proc = run(["bash", MAKE_CERT, "--out", out, "--host", "localhost"], timeout=60)
    assert proc.returncode == 0 and "SHA-256 fingerprint" in proc.stdout, proc.stderr
    return out


@pytest.fixture(scope="module")
def server(cert: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    store = tmp_path_factory.mktemp("tls-store") / "store.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SPEAKERID_HTTP", None)
    proc = subprocess.Popen(["bash", str(SERVE), "--address", "127.0.0.1", "--port", str(port), "--cert",
                             str(cert / "status.crt"), "--key", str(cert / "status.key"), "--store", str(store),
                             "--model", str(REPO / DEFAULT_MODEL)], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    trusting = ssl.create_default_context(cafile=str(cert / "status.crt"))
    deadline = time.time() + 90
    try:
        while True:
            assert proc.poll() is None, f"server exited: {proc.stdout.read() if proc.stdout else ''}"
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/_stcore/health", timeout=2,
                                            context=trusting) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert time.time() < deadline, "the HTTPS server did not answer within 90 s"
                time.sleep(0.5)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_certificate_for_the_host(cert: Path) -> None:
    assert stat.S_IMODE((cert / "status.key").stat().st_mode) == 0o600
    text = run(["openssl", "x509", "-in", cert / "status.crt", "-noout", "-ext", "subjectAltName,basicConstraints"])
    assert "DNS:localhost" in text.stdout and "IP Address:127.0.0.1" in text.stdout and "CA:FALSE" in text.stdout
    again = run(["bash", MAKE_CERT, "--out", cert, "--host", "localhost"], timeout=60)
    assert again.returncode == 0 and "keeping" in again.stdout  # a second install run changes nothing


def test_page_served_over_https_only(server: int, cert: Path) -> None:
    trusting = ssl.create_default_context(cafile=str(cert / "status.crt"))
    with urllib.request.urlopen(f"https://127.0.0.1:{server}/", timeout=10, context=trusting) as r:
        assert r.status == 200 and b"<title>" in r.read().lower()
    with urllib.request.urlopen(f"https://127.0.0.1:{server}/_stcore/health", timeout=10, context=trusting) as r:
        assert r.read() == b"ok"
    served = ssl.get_server_certificate(("127.0.0.1", server))
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert((cert / "status.crt").read_text())
    with pytest.raises(urllib.error.URLError) as untrusted:  # until the owner trusts it (README)
        urllib.request.urlopen(f"https://127.0.0.1:{server}/_stcore/health", timeout=10,
                               context=ssl.create_default_context()).close()
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)  # plain HTTP on the same port
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/_stcore/health")
        conn.getresponse().read()
    conn.close()


def test_no_certificate_no_plain_http_unless_asked(tmp_path: Path) -> None:
    env = {"SPEAKERID_TLS_CERT": str(tmp_path / "none.crt"), "SPEAKERID_TLS_KEY": str(tmp_path / "none.key"),
           "SPEAKERID_HTTP": "0"}
    proc = run(["bash", SERVE, "--address", "127.0.0.1", "--port", str(free_port())], env=env, timeout=60)
    assert proc.returncode == 2 and "TLS certificate or key" in proc.stderr and "--http" in proc.stderr
