import os
import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Connection

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args, env_overrides):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"TANDEM_TESTING", "DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(env_overrides)
    return subprocess.run(  # noqa: S603 (fixed arguments)
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_production_settings_pass_the_deploy_check():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={
            "DEBUG": "false",
            "SECRET_KEY": "k" * 20 + "Z9-!x" * 10,
            "SUPPRESSION_HMAC_KEY": "suppression-key",
            "ALLOWED_HOSTS": "tandem.example",
            "PUBLIC_BASE_URL": "https://tandem.example",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("url", ["http://tandem.example", "", "https://"])
def test_production_refuses_to_start_without_an_https_public_base_url(url):
    result = _manage(
        "check",
        env_overrides={
            "DEBUG": "false",
            "SECRET_KEY": "k" * 20 + "Z9-!x" * 10,
            "SUPPRESSION_HMAC_KEY": "suppression-key",
            "ALLOWED_HOSTS": "tandem.example",
            "PUBLIC_BASE_URL": url,
        },
    )
    assert result.returncode != 0
    assert "PUBLIC_BASE_URL must be an https:// address when DEBUG is off" in result.stderr


def test_debug_accepts_a_plain_http_public_base_url_for_local_work():
    result = _manage("check", env_overrides={"DEBUG": "true", "PUBLIC_BASE_URL": "http://127.0.0.1:8000"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage(
        "check", env_overrides={"DEBUG": "false", "SUPPRESSION_HMAC_KEY": "x", "PUBLIC_BASE_URL": "https://t.example"}
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_embedded_broker_delivers_every_message_whole(tmp_path):
    queue_dir, control_dir = tmp_path / "queue", tmp_path / "control"
    queue_dir.mkdir()
    control_dir.mkdir()
    options = {
        "data_folder_in": str(queue_dir),
        "data_folder_out": str(queue_dir),
        "control_folder": str(control_dir),
    }
    with Connection(
        "filesystem://", transport="config.broker.AtomicFilesystemTransport", transport_options=options
    ) as connection:
        queue = connection.SimpleQueue("tandem-test")
        for number in range(50):
            queue.put({"n": number})
        received = []
        for _ in range(50):
            message = queue.get(timeout=2)
            received.append(message.payload["n"])
            message.ack()
        queue.close()
    assert sorted(received) == list(range(50))
    assert not list(queue_dir.glob("*.part"))
